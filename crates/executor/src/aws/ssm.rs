//! SSM Parameter Store in the caller's account and region: one `String`
//! parameter per registry entry, tagged as rolecall's.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm as ssm;

use super::{SdkCloud, sdk_error};
use crate::cloud::{CloudError, Parameters};

impl Parameters for SdkCloud {
    async fn parameters_under(&self, path: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let mut pages = self
            .ssm()
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            // GetParametersByPath answers at most 10 a page.
            .max_results(10)
            .into_paginator()
            .send();
        let mut out = BTreeMap::new();
        while let Some(page) = pages.next().await {
            for p in page.map_err(sdk_error)?.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value()) {
                    out.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        Ok(out)
    }

    async fn tagged_under(&self, path: &str, tags: &[(&str, &str)]) -> Result<BTreeSet<String>, CloudError> {
        let filter = |key: String, option: &str, value: &str| {
            ssm::types::ParameterStringFilter::builder()
                .key(key)
                .option(option)
                .values(value)
                .build()
                .map_err(|e| CloudError::transport(e.to_string()))
        };
        let mut request = self
            .ssm()
            .describe_parameters()
            .parameter_filters(filter("Path".to_owned(), "Recursive", path)?)
            .max_results(50);
        for (key, value) in tags {
            request = request.parameter_filters(filter(format!("tag:{key}"), "Equals", value)?);
        }
        let mut pages = request.into_paginator().send();
        let mut out = BTreeSet::new();
        while let Some(page) = pages.next().await {
            for p in page.map_err(sdk_error)?.parameters() {
                if let Some(name) = p.name() {
                    out.insert(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    async fn create_parameter(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> Result<(), CloudError> {
        let mut request = self
            .ssm()
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ssm::types::ParameterType::String)
            .overwrite(false);
        for (key, value) in tags {
            let tag = ssm::types::Tag::builder()
                .key(*key)
                .value(*value)
                .build()
                .map_err(|e| CloudError::transport(e.to_string()))?;
            request = request.tags(tag);
        }
        request.send().await.map(|_| ()).map_err(sdk_error)
    }

    async fn overwrite_parameter(&self, name: &str, value: &str) -> Result<(), CloudError> {
        self.ssm()
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn delete_parameters(&self, names: &[String]) -> Result<(), CloudError> {
        self.ssm()
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }
}

impl SdkCloud {
    fn ssm(&self) -> &ssm::Client {
        self.ssm.get_or_init(|| {
            ssm::Client::from_conf(
                ssm::config::Builder::from(&self.base)
                    .interceptor(super::CallLog::new(super::CALLER))
                    .build(),
            )
        })
    }
}
