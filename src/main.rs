//! `fapiao`: the command line. One file per subcommand; the work lives in the workspace crates.

/// Imports and exports move millions of small strings between a reading thread and the loader;
/// glibc's allocator serializes frees across threads (an eighth of an import's CPU went to
/// `_int_free` and its lock), mimalloc frees them where they were made.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apply_cmd;
mod bench;
mod bench_api;
mod bench_console;
mod bench_processes;
mod bench_receipt;
mod callbacks_cmd;
mod config_cmd;
mod db;
mod deduct_cmd;
mod demo;
mod demo_erp;
mod demo_issued;
mod demo_pool;
mod demo_receipt;
mod demo_red_flush;
mod enterprise;
mod exit;
mod export_cmd;
mod import_cmd;
mod invoices_cmd;
mod issue_cmd;
mod jobs_cmd;
mod output;
mod param;
mod pending_cmd;
mod pool_cmd;
mod progress;
mod receipt_cmd;
mod receipt_print;
mod red_flush_cmd;
mod sandbox_cmd;
mod scheme;
mod system_cmd;
mod user_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use fapiao_schemas::config::Settings;

use crate::exit::Outcome;

/// Batch core for Chinese VAT invoice operations: scheduled sync jobs and ETL pipelines over PostgreSQL.
///
/// Exit codes: 0 ok, 1 failed, 2 usage error (including invalid values), 3 finished with some items rejected.
#[derive(Parser)]
#[command(name = "fapiao", version)]
struct Cli {
    /// Print data as JSON on stdout (errors too, as {"error": …}).
    #[arg(long, global = true)]
    json: bool,
    /// Log format on stderr; the level comes from RUST_LOG (default: info for fapiao, warn otherwise).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole flow once on the embedded default and print what it did.
    Demo(demo::DemoArgs),
    /// The private PostgreSQL cluster under $FAPIAO_HOME/pg.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Parameters (参数配置单据): sys_param(type, key, value).
    #[command(subcommand)]
    Param(param::ParamCommand),
    /// The tenant's enterprises (企业信息).
    #[command(subcommand)]
    Enterprise(enterprise::EnterpriseCommand),
    /// Sync schemes (全量发票数据同步设置).
    #[command(subcommand)]
    Scheme(scheme::SchemeCommand),
    /// The configuration in effect.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Import an Excel/CSV file (applications, pool invoices, red-flush lists); `import history` lists batches.
    Import(import_cmd::ImportArgs),
    /// Applications (开票申请单): list, show a bill's invoices, withdraw.
    #[command(subcommand)]
    Apply(apply_cmd::ApplyCommand),
    /// Push bills into pending invoices (split/merge) and issue them; settle unfinished ones; send callbacks.
    Issue(issue_cmd::IssueArgs),
    /// 全票池: input invoices with their deductibility; one whole with lines and its log.
    #[command(subcommand)]
    Pool(pool_cmd::PoolCommand),
    /// 抵扣类勾选: select / unselect pool invoices for a tax period, batches, stop, an invoice's state.
    #[command(subcommand)]
    Deduct(deduct_cmd::DeductCommand),
    /// 自动重开: reissue failed invoices whose message matches sim_auto_issue_config (not before their time).
    Reissue(issue_cmd::ReissueArgs),
    /// Issued invoices (已开发票): list with filters, show one whole, download files, send (交付).
    #[command(subcommand)]
    Invoices(invoices_cmd::InvoicesCommand),
    /// Pending invoices (待开发票) and exception handling (开票异常处理): list, return, delete, edit.
    #[command(subcommand)]
    Pending(pending_cmd::PendingCommand),
    /// 发票红冲: --invoice NUMBER[:AMOUNT[:REASON]] (≤ 10) or --file LIST.xlsx; forms and sheets; poll.
    RedFlush(red_flush_cmd::RedFlushArgs),
    /// Per-bill callbacks to the ERPs (按单回调): list, retry.
    #[command(subcommand)]
    Callbacks(callbacks_cmd::CallbacksCommand),
    /// Exports for auditors: `export reconciliation --from D --to D [--tax-no T] --out FILE.zip`.
    #[command(subcommand)]
    Export(export_cmd::ExportCommand),
    /// Run the scheduler and workers, and the web console on `[http] listen`, until SIGINT/SIGTERM
    /// (any number of processes per database).
    Serve(jobs_cmd::ServeArgs),
    /// The web console's users: add, list, disable, passwd.
    #[command(subcommand)]
    User(user_cmd::UserCommand),
    /// Business systems (业务系统) that call the ERP API: add, list, disable, rotate-secret, set-callback.
    #[command(subcommand)]
    System(system_cmd::SystemCommand),
    /// The ERP API: `api log` lists its calls.
    #[command(subcommand)]
    Api(system_cmd::ApiCommand),
    /// Dynamic receipt codes (动态小票码): settings, keys, add, copy, disable, list, show, link, stats.
    #[command(subcommand)]
    Receipt(receipt_cmd::ReceiptCommand),
    /// The goods catalogue (开票项) receipt-code lines pick from: add, list, disable.
    #[command(subcommand)]
    Goods(receipt_cmd::GoodsCommand),
    /// The audit log of every change (console and CLI).
    #[command(subcommand)]
    Audit(user_cmd::AuditCommand),
    /// The sync jobs: list, run now, pause/resume, history.
    #[command(subcommand)]
    Jobs(jobs_cmd::JobsCommand),
    /// The input sync: a scheme's backfill (reset-start: the documented updateDownInit), and
    /// given-up rows and applications sent through again (retry).
    #[command(subcommand)]
    Sync(jobs_cmd::SyncCommand),
    /// Serve the channel protocol locally: invoice cloud, tax bureau and an ERP, with faults on demand.
    Sandbox(sandbox_cmd::SandboxArgs),
    /// Benchmarks (build with --release); each prints its figure and the ratio to its bound.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// What every command gets: parsed settings and the output mode.
pub struct Context {
    pub settings: Settings,
    pub json: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::arguments_refused(e, json_asked(std::env::args_os())),
    };
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async {
        let ctx = Context { settings: Settings::load()?, json: cli.json };
        run(cli.command, &ctx).await
    });
    exit::finish(result, cli.json, || match Settings::load() {
        Ok(settings) => fapiao_store::whereabouts(&settings),
        Err(e) => format!("unknown ({e})"),
    })
}

async fn run(command: Command, ctx: &Context) -> anyhow::Result<Outcome> {
    match command {
        Command::Demo(args) => demo::run(args, ctx).await,
        Command::Db(c) => db::run(c, ctx).await,
        Command::Param(c) => param::run(c, ctx).await,
        Command::Enterprise(c) => enterprise::run(c, ctx).await,
        Command::Scheme(c) => scheme::run(c, ctx).await,
        Command::Config(c) => config_cmd::run(c, ctx),
        Command::Import(args) => import_cmd::run(args, ctx).await,
        Command::Apply(c) => apply_cmd::run(c, ctx).await,
        Command::Pool(c) => pool_cmd::run(c, ctx).await,
        Command::Deduct(c) => deduct_cmd::run(c, ctx).await,
        Command::Issue(args) => issue_cmd::run(args, ctx).await,
        Command::Reissue(args) => issue_cmd::reissue(args, ctx).await,
        Command::Invoices(c) => invoices_cmd::run(c, ctx).await,
        Command::Pending(c) => pending_cmd::run(c, ctx).await,
        Command::Callbacks(c) => callbacks_cmd::run(c, ctx).await,
        Command::RedFlush(args) => red_flush_cmd::run(args, ctx).await,
        Command::Export(c) => export_cmd::run(c, ctx).await,
        Command::Serve(args) => jobs_cmd::serve_cmd(args, ctx).await,
        Command::User(c) => user_cmd::run(c, ctx).await,
        Command::Audit(c) => user_cmd::audit(c, ctx).await,
        Command::System(c) => system_cmd::run(c, ctx).await,
        Command::Api(c) => system_cmd::api(c, ctx).await,
        Command::Receipt(c) => receipt_cmd::run(c, ctx).await,
        Command::Goods(c) => receipt_cmd::goods(c, ctx).await,
        Command::Jobs(c) => jobs_cmd::run(c, ctx).await,
        Command::Sync(c) => jobs_cmd::sync(c, ctx).await,
        Command::Sandbox(args) => sandbox_cmd::run(args, ctx).await,
        Command::Bench(c) => bench::run(c, ctx).await,
    }
}

/// Whether `--json` is among the raw arguments (clap could not parse them, so `cli.json` is not
/// there to ask). Arguments after `--` are values, not flags.
fn json_asked(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// The workspace's crates: each logs at info by default.
const OUR_CRATES: [&str; 11] = [
    "fapiao",
    "fapiao_schemas",
    "fapiao_store",
    "fapiao_channel",
    "fapiao_invoicing",
    "fapiao_pipelines",
    "fapiao_export",
    "fapiao_usecases",
    "fapiao_jobs",
    "fapiao_web",
    "fapiao_api",
];

/// Logs on stderr: RUST_LOG when set, else warn for everyone and info for our crates; colours
/// only on a terminal (a log file or journal gets no escape codes).
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let ours: Vec<String> = OUR_CRATES.iter().map(|c| format!("{c}=info")).collect();
        EnvFilter::new(format!("warn,sqlx=error,{}", ours.join(",")))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
