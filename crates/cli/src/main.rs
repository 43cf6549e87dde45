//! The `rolecall` command: parses arguments, reads files and the environment,
//! wires planner, executor and reporter, and turns outcomes into exit codes.
//! The only place that touches files, env, stdout and exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

mod apply;
mod destroy;
mod drift;
mod exit;
mod files;
mod html;
mod options;
mod orphans;
mod plan;
mod profiles;
mod query;
mod registry;
mod setup;
mod stacksets;
mod verify;

use setup::{AwsArgs, InventoryArg, block_on, connect, interrupt, load_inventory, resolve_targets};

/// The workspace's version, and the git commit it was built from.
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("ROLECALL_COMMIT_SUFFIX"));

#[derive(Parser)]
#[command(
    name = "rolecall",
    version = VERSION,
    about = "Put the same cross-account IAM role stack into every AWS account of an organization"
)]
struct Cli {
    #[command(flatten)]
    aws: AwsArgs,
    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an inventory file; makes no AWS calls
    Validate(InventoryArg),
    /// List the resolved target accounts (inventory plus Organizations discovery)
    Accounts {
        #[command(flatten)]
        inventory: InventoryArg,
        /// JSON on stdout instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show what apply would do in every account and region; writes nothing
    Plan(plan::PlanArgs),
    /// Create or update the role stack everywhere, then write the ARN registry and profiles
    Apply(apply::ApplyArgs),
    /// Delete rolecall's stacks (only those it created), then update the registry and profiles
    Destroy(destroy::DestroyArgs),
    /// Check, read-only, that every account is still covered, healthy and as the inventory says
    Drift(drift::DriftArgs),
    /// Regenerate the profiles file from an ARN registry, offline
    Profiles(profiles::ProfilesArgs),
    /// Prove every registered role can be assumed, the way its profile would (AssumeRole, then GetCallerIdentity)
    Verify(verify::VerifyArgs),
    /// Read the ARN registry: one ARN (`get`), the entries (`list`), or every entry in a format (`export`)
    Registry(query::RegistryArgs),
    /// Print a shell completion script (e.g. `rolecall completions bash > /etc/bash_completion.d/rolecall`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `rolecall man > /usr/local/share/man/man1/rolecall.1`
    Man,
    /// Print a template for the bootstrap role, for accounts that lack one
    BootstrapTemplate(InventoryArg),
    /// Print the role template exactly as apply deploys it (for review and linters)
    Template {
        #[command(flatten)]
        inventory: InventoryArg,
        /// Print the stack parameters instead, as `--parameters file://…` of the AWS CLI takes them
        #[arg(long)]
        parameters: bool,
        /// The role of the catalog (its key; needed when the catalog has several)
        #[arg(long, value_name = "KEY")]
        role: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // `rolecall plan | head`: the reader left; that is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if interrupt().is_set() {
                exit::INTERRUPTED
            } else {
                exit::FAILURE
            })
        }
    }
}

/// The AWS SDK's own log targets, capped whatever ROLECALL_LOG asks: at
/// trace they print canonical requests and, with LOG_SENSITIVE_BODIES set,
/// response bodies (AssumeRole's carry secret keys and session tokens).
const SDK_LOG_CAPS: &[(&str, LevelFilter)] = &[
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_smithy_runtime", LevelFilter::DEBUG),
    ("aws_smithy_runtime_api", LevelFilter::DEBUG),
    ("aws_smithy_http_client", LevelFilter::DEBUG),
    ("aws_smithy_types", LevelFilter::DEBUG),
    ("aws_config", LevelFilter::DEBUG),
    ("aws_credential_types", LevelFilter::DEBUG),
    ("aws_sdk_sts", LevelFilter::DEBUG),
    ("aws_sdk_cloudformation", LevelFilter::DEBUG),
    ("aws_sdk_organizations", LevelFilter::DEBUG),
    ("aws_sdk_iam", LevelFilter::DEBUG),
    ("hyper", LevelFilter::INFO),
    ("hyper_util", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
];

fn init_tracing(verbose: u8) {
    use tracing_subscriber::filter::{FilterExt, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let level = match verbose {
        0 => "warn",
        1 => "rolecall=info,executor=info,warn",
        _ => "rolecall=debug,executor=debug,planner=debug,info",
    };
    let wanted = EnvFilter::try_from_env("ROLECALL_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Both must let an event through: the caps only ever lower a level.
    let caps = SDK_LOG_CAPS
        .iter()
        .fold(Targets::new().with_default(LevelFilter::TRACE), |t, (target, level)| {
            t.with_target(*target, *level)
        });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(wanted.and(caps)),
        )
        .init();
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Validate(arg) => {
            let Some(inv) = load_inventory(&arg.inventory)? else {
                return Ok(exit::FAILURE);
            };
            let regions: usize = inv.accounts.iter().map(|a| a.regions(&inv.deploy.regions).len()).sum();
            println!(
                "{}: valid ({} listed account{}, {} account/region pair{}{})",
                inv.origin.display(),
                inv.accounts.len(),
                if inv.accounts.len() == 1 { "" } else { "s" },
                regions,
                if regions == 1 { "" } else { "s" },
                if inv.organization.is_some() {
                    ", plus accounts discovered through Organizations"
                } else {
                    ""
                },
            );
            Ok(exit::OK)
        }
        Command::Accounts { inventory, json } => {
            let Some(inv) = load_inventory(&inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(async {
                let cloud = connect(&cli.aws, &inv).await?;
                let Some(targets) = resolve_targets(&cloud, &inv).await? else {
                    return Ok(exit::FAILURE);
                };
                let mut out = std::io::stdout().lock();
                if *json {
                    reporter::write_targets_json(&mut out, &targets)?;
                } else {
                    reporter::write_targets(&mut out, &targets)?;
                }
                Ok(exit::OK)
            })
        }
        Command::Plan(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(plan::plan(&cli.aws, &inv, args))
        }
        Command::Apply(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(apply::apply(&cli.aws, &inv, args))
        }
        Command::Destroy(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(destroy::destroy(&cli.aws, &inv, args))
        }
        Command::Drift(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(drift::drift(&cli.aws, &inv, args))
        }
        Command::Profiles(args) => profiles::profiles(&cli.aws, args),
        Command::Registry(args) => block_on(query::registry(&cli.aws, args)),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "rolecall", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock())?;
            Ok(exit::OK)
        }
        Command::Verify(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(verify::verify(&cli.aws, &inv, args))
        }
        Command::Template {
            inventory,
            parameters,
            role,
        } => {
            let Some(inv) = load_inventory(&inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            let keys: Vec<&str> = inv.roles.iter().map(|r| r.key.as_str()).collect();
            let chosen = match (role, inv.roles.as_slice()) {
                (Some(key), _) => inv.role(key),
                (None, [only]) => Some(only),
                (None, _) => None,
            };
            let Some(chosen) = chosen else {
                anyhow::bail!(
                    "name the role with --role: the inventory's roles are {}",
                    keys.join(", ")
                );
            };
            let desired = planner::desired(chosen);
            let mut out = std::io::stdout().lock();
            if *parameters {
                reporter::write_parameters_json(&mut out, &desired.parameters)?;
            } else {
                out.write_all(desired.template_body.as_bytes())?;
            }
            out.flush()?;
            Ok(exit::OK)
        }
        Command::BootstrapTemplate(arg) => {
            let Some(inv) = load_inventory(&arg.inventory)? else {
                return Ok(exit::FAILURE);
            };
            print!("{}", planner::template::bootstrap(&inv));
            let region = inv.deploy.regions.first().map_or("us-east-1", String::as_str);
            eprintln!(
                "# Launch it once in each account whose bootstrap role is missing (e.g. invited accounts),\n\
                 # with that account's own administrator credentials:\n\
                 #   rolecall bootstrap-template -i {} > rolecall-bootstrap.json\n\
                 #   aws cloudformation create-stack --stack-name {} --template-body file://rolecall-bootstrap.json --capabilities CAPABILITY_NAMED_IAM --region {region}\n\
                 # It creates role {} trusting account {}, allowed to manage only stack {} and role {}.",
                arg.inventory.display(),
                planner::template::BOOTSTRAP_STACK_NAME,
                inv.deploy.bootstrap_role,
                inv.source_account,
                inv.roles
                    .iter()
                    .map(|r| r.spec.stack_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                inv.roles
                    .iter()
                    .map(|r| r.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            Ok(exit::OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every flag of the command line is in README.md
    /// (its Commands table or its text): the docs and the parser agree.
    #[test]
    fn every_command_and_flag_is_documented() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let flags = |cmd: &clap::Command, path: &str| -> Vec<String> {
            cmd.get_arguments()
                .filter_map(|arg| arg.get_long())
                .filter(|long| !["help", "version"].contains(long) && !readme.contains(&format!("--{long}")))
                .map(|long| format!("{path} --{long}"))
                .collect()
        };
        let root = super::Cli::command();
        let mut missing = flags(&root, "rolecall");
        let mut commands: Vec<(String, &clap::Command)> = Vec::new();
        for sub in root.get_subcommands() {
            let path = format!("rolecall {}", sub.get_name());
            commands.extend(sub.get_subcommands().map(|s| (format!("{path} {}", s.get_name()), s)));
            commands.push((path, sub));
        }
        for (path, cmd) in commands {
            if !readme.contains(&path) {
                missing.push(path.clone());
            }
            missing.extend(flags(cmd, &path));
        }
        assert!(missing.is_empty(), "not in README.md: {missing:#?}");
    }
}
