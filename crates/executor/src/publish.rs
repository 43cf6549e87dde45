//! Publishing the registry to SSM Parameter Store: read the prefix once,
//! then write only what changed, at a rate PutParameter allows.

use std::collections::BTreeMap;

use model::{MANAGED_BY_VALUE, TAG_MANAGED_BY};
use planner::ssm::{Changes, TAG_INVENTORY};

use crate::cloud::{CloudError, Parameters};
use crate::limit::RateLimit;

/// PutParameter is throttled hard on AWS (a few per second per account and
/// region, with standard throughput): rolecall stays under it, and the
/// SDK's retries take what throttling is left.
pub const PUT_PER_SECOND: u32 = 3;

/// What a publish did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub created: usize,
    pub overwritten: usize,
    pub deleted: usize,
    pub unchanged: usize,
    /// Wanted names held by a parameter rolecall did not make.
    pub foreign: Vec<String>,
    /// Created by someone else between this run's read and its write.
    pub raced: Vec<String>,
}

impl Published {
    /// The changes made so far (or found made by another run).
    fn handled(&self) -> usize {
        self.created + self.raced.len() + self.overwritten + self.deleted
    }
}

/// Why a publish stopped; `done` is what was written before.
#[derive(Debug, thiserror::Error)]
#[error("{what} {name}: {source}")]
pub struct PublishError {
    pub what: &'static str,
    pub name: String,
    #[source]
    pub source: CloudError,
    pub done: Published,
}

/// Brings the parameters under `prefix` to `wanted` (name → value) for
/// inventory `inventory`. `progress(done, total)` after each write.
pub async fn publish<P: Parameters>(
    ssm: &P,
    prefix: &str,
    inventory: &str,
    wanted: &BTreeMap<String, String>,
    rate: &RateLimit,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Published, PublishError> {
    let tags = [(TAG_MANAGED_BY, MANAGED_BY_VALUE), (TAG_INVENTORY, inventory)];
    // The error of a call, with what was written before it.
    fn failed(what: &'static str, name: &str, done: &Published, source: CloudError) -> PublishError {
        PublishError {
            what,
            name: name.to_owned(),
            source,
            done: done.clone(),
        }
    }
    let mut done = Published::default();
    let existing = ssm
        .parameters_under(prefix)
        .await
        .map_err(|e| failed("GetParametersByPath", prefix, &done, e))?;
    let ours = if existing.is_empty() {
        Default::default()
    } else {
        ssm.tagged_under(prefix, &tags)
            .await
            .map_err(|e| failed("DescribeParameters", prefix, &done, e))?
    };
    let Changes {
        create,
        overwrite,
        delete,
        foreign,
        unchanged,
    } = planner::ssm::changes(wanted, &existing, &ours);
    done.unchanged = unchanged;
    done.foreign = foreign;
    let total = create.len() + overwrite.len() + delete.len();
    for (name, value) in &create {
        rate.acquire().await;
        match ssm.create_parameter(name, value, &tags).await {
            Ok(()) => done.created += 1,
            // Another run (a concurrent `apply --accounts`) created it
            // since the prefix was read: the next run compares it.
            Err(e) if e.kind == crate::cloud::ErrorKind::AlreadyExists => done.raced.push(name.clone()),
            Err(e) => return Err(failed("PutParameter", name, &done, e)),
        }
        progress(done.handled(), total);
    }
    for (name, value) in &overwrite {
        rate.acquire().await;
        ssm.overwrite_parameter(name, value)
            .await
            .map_err(|e| failed("PutParameter", name, &done, e))?;
        done.overwritten += 1;
        progress(done.handled(), total);
    }
    for names in delete.chunks(10) {
        ssm.delete_parameters(names)
            .await
            .map_err(|e| failed("DeleteParameters", &names[0], &done, e))?;
        done.deleted += names.len();
        progress(done.handled(), total);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use super::*;

    /// Parameter Store whose PutParameter says AccessDenied after `allow`.
    struct Store {
        params: Mutex<BTreeMap<String, String>>,
        allow: usize,
        puts: Mutex<usize>,
        /// Created by another run after the read.
        taken: Option<&'static str>,
    }

    impl Parameters for Store {
        async fn parameters_under(&self, _: &str) -> Result<BTreeMap<String, String>, CloudError> {
            Ok(self.params.lock().unwrap().clone())
        }
        async fn tagged_under(&self, _: &str, _: &[(&str, &str)]) -> Result<BTreeSet<String>, CloudError> {
            Ok(self.params.lock().unwrap().keys().cloned().collect())
        }
        async fn create_parameter(&self, name: &str, value: &str, _: &[(&str, &str)]) -> Result<(), CloudError> {
            if self.taken == Some(name) {
                return Err(CloudError::service(
                    "ParameterAlreadyExists",
                    "The parameter already exists.",
                ));
            }
            let mut puts = self.puts.lock().unwrap();
            if *puts == self.allow {
                return Err(CloudError::service(
                    "AccessDeniedException",
                    "not authorized to perform ssm:PutParameter",
                ));
            }
            *puts += 1;
            self.params.lock().unwrap().insert(name.to_owned(), value.to_owned());
            Ok(())
        }
        async fn overwrite_parameter(&self, name: &str, value: &str) -> Result<(), CloudError> {
            self.create_parameter(name, value, &[]).await
        }
        async fn delete_parameters(&self, names: &[String]) -> Result<(), CloudError> {
            let mut params = self.params.lock().unwrap();
            names.iter().for_each(|n| {
                params.remove(n);
            });
            Ok(())
        }
    }

    #[test]
    fn a_denied_publish_says_how_far_it_got_and_the_next_run_finishes_it() {
        let wanted: BTreeMap<String, String> = (1..=4).map(|n| (format!("/p/{n}"), format!("arn:{n}"))).collect();
        let store = Store {
            params: Mutex::new(BTreeMap::new()),
            allow: 2,
            puts: Mutex::new(0),
            taken: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let rate = RateLimit::per_second(1000, 1000);
        let e = rt
            .block_on(publish(&store, "/p", "inv", &wanted, &rate, &|_, _| {}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "PutParameter /p/3: AccessDeniedException: not authorized to perform ssm:PutParameter"
        );
        assert_eq!(e.done.created, 2);
        let store = Store {
            allow: usize::MAX,
            ..store
        };
        let done = rt
            .block_on(publish(&store, "/p", "inv", &wanted, &rate, &|_, _| {}))
            .unwrap();
        assert_eq!(
            (done.created, done.unchanged),
            (2, 2),
            "the next run writes only what is missing"
        );
    }

    #[test]
    fn a_parameter_another_run_created_meanwhile_is_not_a_failure() {
        let wanted: BTreeMap<String, String> = (1..=2).map(|n| (format!("/p/{n}"), format!("arn:{n}"))).collect();
        let store = Store {
            params: Mutex::new(BTreeMap::new()),
            allow: usize::MAX,
            puts: Mutex::new(0),
            taken: Some("/p/2"),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let rate = RateLimit::per_second(1000, 1000);
        let done = rt
            .block_on(publish(&store, "/p", "inv", &wanted, &rate, &|_, _| {}))
            .unwrap();
        assert_eq!((done.created, done.raced), (1, vec!["/p/2".to_owned()]));
    }
}
