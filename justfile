# rolecall: run `just` to list the recipes.

default:
    @just --list

# install what the tests and the demo need (moto, cfn-lint, the AWS CLI); quick when they are there
setup:
    @bash .ci/setup

# build every crate and the rolecall binary
build:
    cargo build --workspace --bins

# run every test: unit, table-driven and end-to-end against a local moto
test: setup
    bash .ci/test

# start a local emulator, seed an organization and run the whole rolecall flow on inventory/demo.yaml
demo: setup
    cargo run --quiet -p tests --bin rolecall-demo

# the same demo through a self-managed CloudFormation stack set (deploy.via: stacksets)
demo-stacksets: setup
    cargo run --quiet -p tests --bin rolecall-demo -- --stacksets

# the demo, then out-of-band changes that `rolecall drift` must find, exactly
demo-drift: setup
    cargo run --quiet -p tests --bin rolecall-demo -- --drift

# rolecall side by side with the AWS CLI recipe and a boto3 thread pool against moto, then the rollout with AWS's waits, the simulator at 1k-50k accounts and the memory of 10,000 in flight; release build; writes BENCHMARKS.md (options: --accounts N --recipe-accounts M --mid-accounts K --runs R --pools 16,32,64 --concurrency C; --apply-only [--baseline ROLECALL] prints only apply's client CPU, two builds alternating)
bench *args: setup
    cargo run --quiet --release -p tests --bin rolecall-bench -- {{args}}

# memory of N accounts in flight on the real SDK path (a session and a CloudFormation client each), release build
bench-memory accounts="10000": setup
    cargo run --quiet --release -p tests --bin rolecall-bench -- --sessions {{accounts}}

# only the rollout with AWS's waits: stacks take SECONDS through the proxy, every call LATENCY ms more; 1,000 accounts, defaults; prints a table row (release build)
bench-slow seconds="30" latency="50" accounts="1000": setup
    cargo run --quiet --release -p tests --bin rolecall-bench -- --slow-stacks {{seconds}} --latency-ms {{latency}} --accounts {{accounts}}

# N accounts (default 1000) x 2 regions through throttling, 5xx, dropped connections and latency; release build, not in CI (`just test` runs 200)
chaos accounts="1000" seed="1": setup
    cargo run --quiet --release -p tests --bin rolecall-chaos -- {{accounts}} {{seed}}

# fuzz the inventory parser and the managed-block rewriter for SECONDS each (nightly toolchain and cargo-fuzz; not in CI)
fuzz seconds="120":
    @cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
    mkdir -p fuzz/corpus/inventory fuzz/corpus/managed_block
    cargo +nightly fuzz run inventory fuzz/corpus/inventory tests/corpus inventory -- -max_total_time={{seconds}} -timeout=10 -rss_limit_mb=2048
    cargo +nightly fuzz run managed_block fuzz/corpus/managed_block -- -max_total_time={{seconds}} -timeout=10

# formatting and lints, as CI wants them
lint:
    cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings
