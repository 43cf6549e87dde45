//! S3 in the caller's account and region: the registry object, read with
//! its ETag and written conditionally.

use aws_sdk_s3 as s3;

use super::{SdkCloud, found, sdk_error};
use crate::cloud::{CloudError, Object, Objects, WriteIf};

impl Objects for SdkCloud {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, CloudError> {
        let answer =
            found(self.s3().get_object().bucket(bucket).key(key).send().await).map_err(|e| self.elsewhere(e))?;
        let Some(out) = answer else {
            return Ok(None);
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| CloudError::transport(format!("reading s3://{bucket}/{key}: {e}")))?
            .into_bytes();
        let body = String::from_utf8(bytes.to_vec())
            .map_err(|_| CloudError::transport(format!("s3://{bucket}/{key} is not UTF-8 text")))?;
        Ok(Some(Object { body, etag }))
    }

    async fn put_object(&self, bucket: &str, key: &str, body: &str, condition: &WriteIf) -> Result<(), CloudError> {
        let put = self
            .s3()
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(s3::primitives::ByteStream::from(body.as_bytes().to_vec()));
        let put = match condition {
            WriteIf::Absent => put.if_none_match("*"),
            WriteIf::Matches(etag) => put.if_match(etag),
        };
        put.send().await.map(|_| ()).map_err(|e| self.elsewhere(sdk_error(e)))
    }
}

impl SdkCloud {
    /// S3 answers a bucket of another region with a redirect the SDK does
    /// not follow: say what to do.
    fn elsewhere(&self, e: CloudError) -> CloudError {
        if matches!(
            e.code(),
            Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")
        ) {
            return CloudError {
                message: format!(
                    "{} (the bucket is not in {}, the caller's region: pass --region with the bucket's region)",
                    e.message,
                    self.region()
                ),
                ..e
            };
        }
        e
    }

    /// The caller's S3 client, built on first use. Against a custom
    /// endpoint (an emulator on an IP address) buckets are addressed by
    /// path, as the AWS CLI does there.
    fn s3(&self) -> &s3::Client {
        self.s3.get_or_init(|| {
            let mut config = s3::config::Builder::from(&self.base).interceptor(super::CallLog::new(super::CALLER));
            if self.base.endpoint_url().is_some() {
                config = config.force_path_style(true);
            }
            s3::Client::from_conf(config.build())
        })
    }
}
