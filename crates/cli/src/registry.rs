//! The ARN registry's bytes, wherever they live (a file, an S3 object):
//! read the previous document before a run, write the next one after it.
//! What the next one holds is `planner::registry::next`, applied to the
//! newest version at write time (another run may have written meanwhile);
//! how it is spelled is `reporter::registry`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use executor::aws::SdkCloud;
use model::Inventory;
use model::registry::{Location, Registry};
use planner::registry::Header;

use crate::files;

/// Where rolecall 0.2 kept every inventory's registry by default; read
/// (never written) when an inventory's own default file is not there yet.
pub(crate) const LEGACY_REGISTRY: &str = "rolecall-registry.json";

/// The registry's default path: named after the inventory, so that two
/// inventories in one folder never share a file.
pub(crate) fn default_path(inv: &Inventory) -> PathBuf {
    PathBuf::from(format!("rolecall-registry-{}.json", inv.name))
}

/// A registry document's home: read it, and change it atomically without
/// losing another writer's change.
pub(crate) trait Store {
    /// The document's text; `None` when there is none yet.
    async fn read(&self) -> anyhow::Result<Option<String>>;
    /// Replaces the document with `edit(current)`, where `current` is the
    /// newest version at write time; returns what was written. On failure,
    /// the text this run would have written, when it got that far.
    async fn update(
        &self,
        edit: &mut (dyn FnMut(Option<&str>) -> Result<String, EditError> + Send),
    ) -> Result<String, (anyhow::Error, Option<String>)>;
}

/// The newest version cannot take this run's changes (it is another
/// inventory's, or not a registry).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct EditError(String);

/// A file, changed under its folder's lock.
pub(crate) struct FileStore<'a>(pub(crate) &'a Path);

impl Store for FileStore<'_> {
    async fn read(&self) -> anyhow::Result<Option<String>> {
        let text = files::read(self.0)
            .await
            .with_context(|| format!("cannot read the registry {}", self.0.display()))?;
        Ok(Some(text).filter(|t| !t.is_empty()))
    }

    async fn update(
        &self,
        edit: &mut (dyn FnMut(Option<&str>) -> Result<String, EditError> + Send),
    ) -> Result<String, (anyhow::Error, Option<String>)> {
        let mut last = None;
        let result = files::update(self.0, 0o644, |text| {
            let next = edit(Some(text).filter(|t| !t.is_empty())).map_err(|e| anyhow::anyhow!(e))?;
            last = Some(next.clone());
            Ok::<_, anyhow::Error>(Some(next))
        })
        .await;
        match result {
            Ok(written) => Ok(written.unwrap_or_default()),
            Err(e) => Err((
                e.context(format!("cannot write the registry {}", self.0.display())),
                last,
            )),
        }
    }
}

/// An S3 object in the caller's account, written conditionally.
pub(crate) struct S3Store<'a> {
    pub(crate) cloud: &'a SdkCloud,
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
}

impl Store for S3Store<'_> {
    async fn read(&self) -> anyhow::Result<Option<String>> {
        use executor::cloud::Objects;
        let found = self
            .cloud
            .get_object(self.bucket, self.key)
            .await
            .with_context(|| format!("cannot read the registry s3://{}/{}", self.bucket, self.key))?;
        Ok(found.map(|o| o.body))
    }

    async fn update(
        &self,
        edit: &mut (dyn FnMut(Option<&str>) -> Result<String, EditError> + Send),
    ) -> Result<String, (anyhow::Error, Option<String>)> {
        executor::objects::update(self.cloud, self.bucket, self.key, executor::objects::TRIES, edit)
            .await
            .map_err(|e| {
                let document = e.document().map(str::to_owned);
                (anyhow::Error::new(e), document)
            })
    }
}

/// Where this run reads the previous registry and writes the next one.
pub(crate) struct Registries {
    /// Where the next registry is written.
    pub(crate) location: Location,
    /// The previous registry, if there is one.
    pub(crate) previous: Option<Registry>,
}

/// Where `--registry` (else `registry.location`, else the default path)
/// says the registry of `inv` lives.
pub(crate) fn location(given: Option<&str>, inv: &Inventory) -> anyhow::Result<(Location, bool)> {
    match given {
        Some(text) => planner::registry::location(text).map(|l| (l, true)).map_err(|why| {
            anyhow::anyhow!("--registry: {why}\n  help: give a path (registry.json) or an S3 object (s3://BUCKET/KEY)")
        }),
        None => Ok(match &inv.registry.location {
            Some(l) => (l.clone(), true),
            None => (Location::File(default_path(inv)), false),
        }),
    }
}

/// Reads the text at `location`.
async fn read_text(cloud: &SdkCloud, location: &Location) -> anyhow::Result<Option<String>> {
    match location {
        Location::File(path) => FileStore(path).read().await,
        Location::S3 { bucket, key } => S3Store { cloud, bucket, key }.read().await,
    }
}

/// The registry at `location`, whoever's it is (`registry get` without an
/// inventory); `None` when there is none.
pub(crate) async fn read_at(cloud: &SdkCloud, location: &Location) -> anyhow::Result<Option<Registry>> {
    parse_at(location, read_text(cloud, location).await?)
}

/// The previous registry of `inv`: at `--registry` when given, else at
/// `registry.location`, else at the inventory's default path, else at
/// rolecall 0.2's default path when that one is this inventory's. Read
/// before any account is touched (a file before any AWS call): one that
/// cannot be read, or that is another inventory's registry, stops the run
/// before anything changes.
pub(crate) async fn previous(cloud: &SdkCloud, given: Option<&str>, inv: &Inventory) -> anyhow::Result<Registries> {
    let (location, chosen) = location(given, inv)?;
    let mut previous = parse_at(&location, read_text(cloud, &location).await?)?;
    if let Some(r) = &previous {
        check_owner(r, inv).map_err(|why| {
            let help = if chosen {
                format!(
                    "pass --registry with this inventory's own registry (or a new location); without --registry and registry.location it is {}",
                    default_path(inv).display()
                )
            } else {
                "move the file, or pass --registry".to_owned()
            };
            anyhow::anyhow!("{location}: {why}; nothing was done\n  help: {help}")
        })?;
    }
    let legacy = Path::new(LEGACY_REGISTRY);
    if !chosen && previous.is_none() && legacy.exists() {
        let text = FileStore(legacy).read().await?;
        match parse_at(&Location::File(legacy.into()), text)?.map(|r| (check_owner(&r, inv), r)) {
            Some((Ok(()), r)) => {
                eprintln!(
                    "rolecall: read the previous registry from {LEGACY_REGISTRY} (an earlier rolecall's default); this run writes {location}"
                );
                previous = Some(r);
            }
            Some((Err(why), _)) => {
                eprintln!("note: {LEGACY_REGISTRY} is not read: {why}");
            }
            None => {}
        }
    }
    Ok(Registries { location, previous })
}

fn parse_at(location: &Location, text: Option<String>) -> anyhow::Result<Option<Registry>> {
    let Some(text) = text else { return Ok(None) };
    planner::registry::parse(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{location}: {e}\n  help: fix or move it, or pass another --registry"))
}

/// A registry belongs to an inventory when it names it (version 3), or,
/// for versions 1 and 2, when its stacks are the inventory's; and when its
/// source account is the inventory's.
fn check_owner(registry: &Registry, inv: &Inventory) -> Result<(), String> {
    if let Some(name) = &registry.inventory
        && name != &inv.name
    {
        return Err(format!("it is the registry of inventory {name}, not of {}", inv.name));
    }
    if registry.source_account != inv.source_account {
        return Err(format!(
            "its source account is {}, this inventory's is {}",
            registry.source_account, inv.source_account
        ));
    }
    // A version 1 or 2 registry is of one role (default): this inventory's
    // when its stacks are that role's.
    let ours = inv
        .role(model::registry::DEFAULT_ROLE)
        .map(|r| r.spec.stack_name.as_str());
    if registry.inventory.is_none()
        && let Some(e) = registry.entries.iter().find(|e| Some(e.stack_name.as_str()) != ours)
    {
        return Err(format!(
            "it is the registry of another inventory (its stacks are {}, this inventory's are {})",
            e.stack_name,
            ours.unwrap_or("of other roles")
        ));
    }
    Ok(())
}

/// The registry a file names (the `profiles` command): it must be there.
pub(crate) fn read(path: &Path) -> anyhow::Result<Registry> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the registry {}", path.display()))?;
    planner::registry::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The next registry after a run, and whether it reached its location.
pub(crate) struct Written {
    pub(crate) registry: Registry,
    /// What did not reach its place (the reasons and the local copy are
    /// on stderr); the run must not exit 0 when there is any.
    pub(crate) problems: Vec<String>,
}

impl Written {
    pub(crate) fn failed(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The problems as lines under a text summary (JSON output has them on
    /// stderr only).
    pub(crate) fn write_problems(&self, json: bool) -> std::io::Result<()> {
        if json || self.problems.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        for p in &self.problems {
            std::io::Write::write_all(&mut out, format!("Registry: {p}\n").as_bytes())?;
        }
        std::io::Write::flush(&mut out)
    }
}

/// Writes the next registry of a run of `inv` to `location`: this run's
/// outcomes applied to the newest version there (the run's own scope wins,
/// everything else is kept). When it cannot be written, the document is
/// kept in a local file, and the run goes on to report its outcomes.
pub(crate) async fn write_next(
    cloud: &SdkCloud,
    location: &Location,
    inv: &Inventory,
    started_from: Option<&Registry>,
    outcomes: &[model::Outcome],
    scope: planner::registry::Scope<'_>,
) -> anyhow::Result<Written> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let header = Header {
        generated_at: &now,
        inventory: &inv.name,
        source_account: &inv.source_account,
        written_by: &format!("rolecall {}", crate::VERSION),
    };
    let mut next = None;
    let mut edit = |current: Option<&str>| {
        let newest = match current {
            Some(text) => Some(planner::registry::parse(text).map_err(|e| {
                EditError(format!(
                    "the registry there changed into something rolecall cannot read: {e}"
                ))
            })?),
            None => None,
        };
        if let Some(r) = &newest {
            check_owner(r, inv).map_err(|why| EditError(format!("the registry there changed meanwhile: {why}")))?;
        }
        let registry = planner::registry::next(newest.as_ref(), &header, outcomes, scope);
        let text = reporter::registry::to_json(&registry);
        next = Some(registry);
        Ok(text)
    };
    let result = match location {
        Location::File(path) => FileStore(path).update(&mut edit).await,
        Location::S3 { bucket, key } => S3Store { cloud, bucket, key }.update(&mut edit).await,
    };
    // What the run computed last (or from where it started, when it did
    // not get that far): the profiles and the summary follow it.
    let registry = next.unwrap_or_else(|| planner::registry::next(started_from, &header, outcomes, scope));
    let mut problems = Vec::new();
    if let Some(prefix) = &inv.registry.ssm_prefix
        && !publish(cloud, prefix, inv, &registry).await
    {
        problems.push(format!(
            "not published to SSM {prefix} (see the error above); the next run publishes what is missing"
        ));
    }
    match result {
        Ok(_) => {
            eprintln!(
                "rolecall: wrote the ARN registry {location} ({} entries)",
                registry.entries.len()
            );
            Ok(Written { registry, problems })
        }
        Err((e, document)) => {
            let document = document.unwrap_or_else(|| reporter::registry::to_json(&registry));
            let keep = PathBuf::from(format!("rolecall-registry-{}.unwritten.json", inv.name));
            let copy = match location {
                Location::S3 { .. } => format!(
                    "`aws s3 cp {} {location} --content-type application/json`",
                    keep.display()
                ),
                Location::File(_) => format!("`mv {} {location}`", keep.display()),
            };
            match files::write_atomic(&keep, &document, 0o644).await {
                Ok(()) => {
                    eprintln!(
                        "error: the ARN registry was not written: {e:#}\n  help: this run's registry is kept in {}; put it in place once {location} can be written ({copy}), or run the command again",
                        keep.display()
                    );
                    problems.insert(0, format!("not written to {location}; kept in {}", keep.display()));
                }
                Err(io) => {
                    eprintln!(
                        "error: the ARN registry was not written: {e:#}; keeping it in {} failed too: {io}",
                        keep.display()
                    );
                    problems.insert(0, format!("not written to {location}, nor kept locally"));
                }
            }
            Ok(Written { registry, problems })
        }
    }
}

/// Publishes `registry` under `prefix` in SSM; false (said on stderr) when
/// it could not. The rollout stands either way: the next run publishes
/// what is missing.
async fn publish(cloud: &SdkCloud, prefix: &str, inv: &Inventory, registry: &Registry) -> bool {
    let wanted = planner::ssm::wanted(registry, prefix);
    let rate = executor::limit::RateLimit::per_second(executor::publish::PUT_PER_SECOND, 1);
    let progress = |done: usize, total: usize| {
        if done.is_multiple_of(100) || done == total {
            eprintln!("rolecall: SSM {prefix}: {done}/{total} parameters written");
        }
    };
    match executor::publish::publish(cloud, prefix, &inv.name, &wanted, &rate, &progress).await {
        Ok(p) => {
            for name in &p.raced {
                eprintln!("note: SSM parameter {name} was created by another run meanwhile; the next run compares it");
            }
            for name in &p.foreign {
                eprintln!(
                    "warning: SSM parameter {name} was not made by rolecall for inventory {}; it is left as it is (delete it, or choose another registry.ssm_prefix)",
                    inv.name
                );
            }
            eprintln!(
                "rolecall: published the registry to SSM {prefix}: {} created, {} updated, {} deleted, {} unchanged",
                p.created, p.overwritten, p.deleted, p.unchanged
            );
            true
        }
        Err(e) => {
            eprintln!(
                "error: the registry was not published to SSM {prefix}: {e}\n  note: {} created, {} updated, {} deleted before it stopped; the rollout stands, and the next run publishes what is missing",
                e.done.created, e.done.overwritten, e.done.deleted
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use model::registry::{DEFAULT_ROLE, Entry, Registry};
    use model::{AccountId, Status};

    use super::check_owner;

    fn inventory(name: &str) -> model::Inventory {
        let text = "version: 1\nsource_account: \"111111111111\"\naccounts:\n  - id: \"222222222222\"\n";
        let read = |_: &Path| Ok(String::new());
        let (mut inv, _) = planner::inventory::parse(text, Path::new("inv/x.yaml"), &read).unwrap();
        inv.name = name.to_owned();
        inv
    }

    fn registry(inventory: Option<&str>, source: &str, stack: &str) -> Registry {
        Registry {
            schema_version: 4,
            generated_at: "2026-12-01T00:00:00Z".into(),
            inventory: inventory.map(str::to_owned),
            source_account: AccountId::parse(source).unwrap(),
            written_by: None,
            entries: vec![Entry {
                account_id: AccountId::parse("222222222222").unwrap(),
                account_name: "a".into(),
                role: DEFAULT_ROLE.into(),
                role_name: "RolecallTarget".into(),
                stack_name: stack.into(),
                region: "us-east-1".into(),
                stack_id: None,
                role_arn: None,
                outputs: Default::default(),
                fingerprint: None,
                status: Status::Created,
                error: None,
            }],
        }
    }

    #[test]
    fn a_registry_is_only_read_by_its_own_inventory() {
        let admin = inventory("admin");
        let ours = "rolecall-target-role";
        assert_eq!(
            check_owner(&registry(Some("admin"), "111111111111", ours), &admin),
            Ok(())
        );
        assert_eq!(
            check_owner(&registry(Some("readonly"), "111111111111", ours), &admin),
            Err("it is the registry of inventory readonly, not of admin".to_owned())
        );
        assert_eq!(
            check_owner(&registry(Some("admin"), "999999999999", ours), &admin),
            Err("its source account is 999999999999, this inventory's is 111111111111".to_owned())
        );
        // Versions 1 and 2 do not name their inventory: their stacks do.
        assert_eq!(check_owner(&registry(None, "111111111111", ours), &admin), Ok(()));
        assert_eq!(
            check_owner(&registry(None, "111111111111", "rolecall-readonly"), &admin),
            Err("it is the registry of another inventory (its stacks are rolecall-readonly, this inventory's are rolecall-target-role)".to_owned())
        );
    }
}
