//! A read-modify-write of one S3 object (the ARN registry) that never loses
//! another run's write: read it with its ETag, let the caller compute the
//! next text from what is there, write it only if it is still that version
//! (`If-Match`, or `If-None-Match: *` when there was none), and on a
//! conflict start again from the newer version, a bounded number of times.

use std::time::Duration;

use crate::cloud::{CloudError, ErrorKind, Objects, WriteIf};

/// How often a write is tried against other runs' writes.
pub const TRIES: usize = 5;

/// Why the object was not written. `document` is the last text this run
/// computed (when it got that far), for the caller to keep locally.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E: std::error::Error + 'static> {
    #[error("s3://{bucket}/{key}: {source}")]
    Cloud {
        bucket: String,
        key: String,
        source: CloudError,
        document: Option<String>,
    },
    #[error(
        "s3://{bucket}/{key}: another run wrote the object each of the {tries} times this run tried to; nothing of this run was written there"
    )]
    Contended {
        bucket: String,
        key: String,
        tries: usize,
        document: String,
    },
    #[error("s3://{bucket}/{key}: {source}")]
    Edit {
        bucket: String,
        key: String,
        #[source]
        source: E,
    },
}

impl<E: std::error::Error + 'static> UpdateError<E> {
    /// The text this run would have written.
    pub fn document(&self) -> Option<&str> {
        match self {
            UpdateError::Cloud { document, .. } => document.as_deref(),
            UpdateError::Contended { document, .. } => Some(document),
            UpdateError::Edit { .. } => None,
        }
    }
}

/// Reads `s3://bucket/key`, applies `edit` to its text (`None`: no object
/// yet) and writes the result conditionally; returns what was written. A
/// write that lost to another run's (412 PreconditionFailed, 409
/// ConditionalRequestConflict, or the object deleted meanwhile) is made
/// again on the newer version, up to `tries` times.
pub async fn update<O: Objects, E: std::error::Error + 'static>(
    objects: &O,
    bucket: &str,
    key: &str,
    tries: usize,
    mut edit: impl FnMut(Option<&str>) -> Result<String, E>,
) -> Result<String, UpdateError<E>> {
    let cloud = |source, document| UpdateError::Cloud {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source,
        document,
    };
    let mut last = String::new();
    for attempt in 0..tries.max(1) {
        if attempt > 0 {
            // Another run is writing: give it a moment, more each time.
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
        }
        let current = objects.get_object(bucket, key).await.map_err(|e| cloud(e, None))?;
        let next = edit(current.as_ref().map(|o| o.body.as_str())).map_err(|source| UpdateError::Edit {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source,
        })?;
        let condition = match &current {
            None => WriteIf::Absent,
            Some(o) => WriteIf::Matches(o.etag.clone()),
        };
        match objects.put_object(bucket, key, &next, &condition).await {
            Ok(()) => return Ok(next),
            Err(e) if lost_the_race(&e, &condition) => last = next,
            Err(e) => return Err(cloud(e, Some(next))),
        }
    }
    Err(UpdateError::Contended {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        tries: tries.max(1),
        document: last,
    })
}

/// Another run wrote (or deleted) the object between this run's read and
/// its write.
fn lost_the_race(e: &CloudError, condition: &WriteIf) -> bool {
    match e.kind {
        ErrorKind::PreconditionFailed | ErrorKind::Conflict => true,
        // If-Match on an object deleted meanwhile: 404.
        ErrorKind::NotFound => matches!(condition, WriteIf::Matches(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cloud::Object;

    /// One object; `answers` are what the next PutObjects say before the
    /// write goes through (each "conflict" also lets another run write).
    #[derive(Default)]
    struct Bucket {
        object: Mutex<Option<Object>>,
        answers: Mutex<Vec<&'static str>>,
        puts: Mutex<Vec<WriteIf>>,
    }

    impl Objects for Bucket {
        async fn get_object(&self, _: &str, _: &str) -> Result<Option<Object>, CloudError> {
            Ok(self.object.lock().unwrap().clone())
        }

        async fn put_object(&self, _: &str, _: &str, body: &str, condition: &WriteIf) -> Result<(), CloudError> {
            self.puts.lock().unwrap().push(condition.clone());
            let mut object = self.object.lock().unwrap();
            let answer = self.answers.lock().unwrap().pop();
            let other_run = |object: &mut Option<Object>| {
                let before = object.as_ref().map_or(String::new(), |o| o.body.clone());
                *object = Some(Object {
                    body: format!("{before}other;"),
                    etag: format!("\"e{}\"", before.len() + 6),
                });
            };
            match answer {
                Some("412") => {
                    other_run(&mut object);
                    Err(CloudError::service(
                        "PreconditionFailed",
                        "At least one of the pre-conditions you specified did not hold",
                    ))
                }
                Some("409") => Err(CloudError::service(
                    "ConditionalRequestConflict",
                    "A conflicting conditional operation is currently in progress",
                )),
                Some("denied") => Err(CloudError::service("AccessDenied", "Access Denied")),
                _ => {
                    let holds = match (condition, object.as_ref()) {
                        (WriteIf::Absent, None) => true,
                        (WriteIf::Matches(etag), Some(o)) => &o.etag == etag,
                        _ => false,
                    };
                    assert!(holds, "a write whose condition does not hold went through");
                    *object = Some(Object {
                        body: body.to_owned(),
                        etag: format!("\"e{}\"", body.len()),
                    });
                    Ok(())
                }
            }
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("edit failed")]
    struct Never;

    fn append(text: Option<&str>) -> Result<String, Never> {
        Ok(format!("{}mine;", text.unwrap_or_default()))
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_new_object_is_written_only_if_absent_and_then_only_if_unchanged() {
        let bucket = Bucket::default();
        assert_eq!(run(update(&bucket, "b", "k", TRIES, append)).unwrap(), "mine;");
        assert_eq!(run(update(&bucket, "b", "k", TRIES, append)).unwrap(), "mine;mine;");
        assert_eq!(
            *bucket.puts.lock().unwrap(),
            vec![WriteIf::Absent, WriteIf::Matches("\"e5\"".into())]
        );
    }

    #[test]
    fn another_runs_write_is_kept_and_this_runs_change_made_on_it() {
        // 412 (another run wrote), then 409 (a write in flight), then it goes.
        let bucket = Bucket::default();
        *bucket.answers.lock().unwrap() = vec!["409", "412"];
        let written = run(update(&bucket, "b", "k", TRIES, append)).unwrap();
        assert_eq!(written, "other;mine;", "the other run's write survives");
        assert_eq!(bucket.object.lock().unwrap().as_ref().unwrap().body, "other;mine;");
        assert_eq!(bucket.puts.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_bounded_number_of_tries_then_the_document_is_handed_back() {
        let bucket = Bucket::default();
        *bucket.answers.lock().unwrap() = vec!["412"; 9];
        let e = run(update(&bucket, "b", "k", 3, append)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "s3://b/k: another run wrote the object each of the 3 times this run tried to; nothing of this run was written there"
        );
        assert_eq!(e.document(), Some("other;other;mine;"));
        assert_eq!(bucket.puts.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_bucket_that_denies_writes_fails_at_once_with_the_document() {
        let bucket = Bucket::default();
        *bucket.answers.lock().unwrap() = vec!["denied"];
        let e = run(update(&bucket, "b", "k", TRIES, append)).unwrap_err();
        assert_eq!(e.to_string(), "s3://b/k: AccessDenied: Access Denied");
        assert_eq!(e.document(), Some("mine;"));
        assert_eq!(bucket.puts.lock().unwrap().len(), 1, "a denied write is not retried");
    }
}
