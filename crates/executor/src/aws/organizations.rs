//! AWS Organizations: OUs, their accounts and tags, the whole organization.

use aws_sdk_organizations as org;
use model::AccountId;

use super::{SdkCloud, found, limited, sdk_error};
use crate::cloud::{CloudError, OrgAccount, Organization};

impl Organization for SdkCloud {
    async fn list_child_ous(&self, parent: &str) -> Result<Vec<String>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_children()
            .parent_id(parent)
            .child_type(org::types::ChildType::OrganizationalUnit)
            .into_paginator()
            .send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.children().iter().filter_map(|c| c.id().map(str::to_owned)));
        }
        Ok(out)
    }

    async fn list_accounts_for_parent(&self, parent: &str) -> Result<Vec<OrgAccount>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_accounts_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.accounts().iter().filter_map(org_account));
        }
        Ok(out)
    }

    async fn list_organization_accounts(&self) -> Result<Vec<OrgAccount>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self.org.list_accounts().into_paginator().send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.accounts().iter().filter_map(org_account));
        }
        Ok(out)
    }

    async fn describe_account(&self, account: &AccountId) -> Result<Option<OrgAccount>, CloudError> {
        let out = found(
            limited(
                &self.org_limit,
                self.org.describe_account().account_id(account.as_str()).send(),
            )
            .await,
        )?;
        Ok(out.and_then(|o| o.account().and_then(org_account)))
    }

    async fn list_account_tags(&self, account: &AccountId) -> Result<Vec<(String, String)>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_tags_for_resource()
            .resource_id(account.as_str())
            .into_paginator()
            .send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())));
        }
        Ok(out)
    }
}

/// An account with a well-formed id (Organizations always gives one).
fn org_account(a: &org::types::Account) -> Option<OrgAccount> {
    Some(OrgAccount {
        id: AccountId::parse(a.id()?)?,
        name: a.name().unwrap_or_default().to_owned(),
        status: a.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
    })
}
