//! The demo's cyber collection: two recorded attacks as Windows event logs, the SigmaHQ
//! rules that catch them (Detection Rule License 1.1; the authors are named in each rule),
//! and the alerts the detection job derives from the logs.

use anyhow::Result;
use bletchley_ai::WeightFormat;
use bletchley_ai::pipeline::{self, WorkerOptions};
use bletchley_detect::job::{ALERT, rules_collection};
use bletchley_policy::Marking;
use bletchley_store::{IngestOptions, NewItem, Platform};

/// Runs every queued job now, as the worker `serve` starts would, so that what the jobs
/// make is there when the console opens: detection always, transcription with `model_dir`.
pub fn run_jobs_now(
    p: &mut Platform,
    model_dir: Option<std::path::PathBuf>,
) -> Result<pipeline::WorkSummary> {
    let worker = WorkerOptions {
        model_dir,
        weights: WeightFormat::F16,
        beam_size: 5,
        device: None,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    Ok(pipeline::work(
        p,
        &worker,
        true,
        &stop,
        &mut crate::detect::other_jobs(&mut bletchley_detect::job::RuleCache::default()),
        &mut |_| {},
    )?)
}

macro_rules! rule {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(
                "../../bletchley-detect/tests/data/sigma/rules/",
                $path
            )),
        )
    };
}

/// The rules, by their path in SigmaHQ's repository.
const RULES: [(&str, &str); 16] = [
    rule!("windows/process_access/proc_access_win_lsass_dump_comsvcs_dll.yml"),
    rule!("windows/process_access/proc_access_win_lsass_memdump.yml"),
    rule!("windows/process_creation/proc_creation_win_hktl_crackmapexec_execution_patterns.yml"),
    rule!("windows/process_creation/proc_creation_win_hktl_impacket_lateral_movement.yml"),
    rule!("windows/process_creation/proc_creation_win_powershell_getprocess_lsass.yml"),
    rule!("windows/process_creation/proc_creation_win_powershell_non_interactive_execution.yml"),
    rule!("windows/process_creation/proc_creation_win_powershell_script_exec_from_temp_folder.yml"),
    rule!("windows/process_creation/proc_creation_win_rundll32_process_dump_via_comsvcs.yml"),
    rule!("windows/process_creation/proc_creation_win_rundll32_susp_activity.yml"),
    rule!(
        "windows/process_creation/proc_creation_win_susp_local_system_owner_account_discovery.yml"
    ),
    rule!("windows/process_creation/proc_creation_win_susp_lsass_dmp_cli_keywords.yml"),
    rule!("windows/process_creation/proc_creation_win_susp_redirect_local_admin_share.yml"),
    rule!("windows/process_creation/proc_creation_win_whoami_all_execution.yml"),
    rule!("windows/process_creation/proc_creation_win_whoami_output.yml"),
    rule!("windows/process_creation/proc_creation_win_wmiprvse_spawning_process.yml"),
    rule!("windows/process_creation/proc_creation_win_wmiprvse_spawns_powershell.yml"),
];

/// The logs: WMI lateral movement with Impacket (GPL-3.0, sbousseaden/EVTX-ATTACK-SAMPLES) and
/// an LSASS dump with lsassy (CC0-1.0, mdecrevoisier/EVTX-to-MITRE-Attack).
const LOGS: [(&str, &[u8]); 2] = [
    (
        "LM_wmiexec_impacket_sysmon_whoami.evtx",
        include_bytes!(
            "../../bletchley-detect/tests/data/sigma/evtx/sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx"
        ),
    ),
    (
        "LSASS dump with LSASSY (SYSMON).evtx",
        include_bytes!(
            "../../bletchley-detect/tests/data/sigma/evtx/EVTX-to-MITRE-Attack/TA0006-Credential Access/T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx"
        ),
    ),
];

/// What the cyber collection holds.
pub struct Cyber {
    /// Event logs stored.
    pub logs: usize,
    /// Rule files stored.
    pub rules: usize,
    /// Alerts the detection jobs derived.
    pub alerts: usize,
    /// Triage cases the alerts were grouped into (by rule and host within an hour).
    pub cases: usize,
    /// Changes and notes recorded on them (each an item).
    pub case_notes: usize,
    /// How many cases the demo playbook ran on as they opened.
    pub playbook_runs: usize,
    /// The first of its runs, which waits for a second responder.
    pub waiting: Option<bletchley_detect::playbook::RunReport>,
}

/// The demo's response playbook.
const PLAYBOOK: &str = include_str!("demo_playbook.yml");

/// Makes `mi5/cyber` and `mi5/sigma-rules`, stores the rules and the logs as alice, and runs
/// the detection jobs ingest queued.
pub fn ingest_cyber(p: &mut Platform) -> Result<Cyber> {
    p.add_collection("mi5/cyber", false)?;
    p.add_collection(&rules_collection("mi5"), false)?;
    let rules: Vec<NewItem> = RULES
        .iter()
        .map(|(path, text)| NewItem {
            title: path.rsplit('/').next().unwrap_or(path).to_owned(),
            content: text.as_bytes().to_vec(),
        })
        .collect();
    let opts = |collection: &str, marking: &str| -> Result<IngestOptions> {
        Ok(IngestOptions {
            collection: collection.to_owned(),
            marking: Marking::parse(marking)?,
            authority: Some("DEMO-WARRANT-001".into()),
            retain_until_ms: None,
            justification: Some("demo data".into()),
            priority: Default::default(),
        })
    };
    bletchley_index::ingest::ingest(
        p,
        "alice",
        &opts(&rules_collection("mi5"), "OFFICIAL")?,
        rules,
    )?;
    let logs: Vec<NewItem> = LOGS
        .iter()
        .map(|(title, bytes)| NewItem {
            title: (*title).to_owned(),
            content: bytes.to_vec(),
        })
        .collect();
    bletchley_index::ingest::ingest(p, "alice", &opts("mi5/cyber", "SECRET")?, logs)?;
    // The worker `serve` starts would run the jobs; run them now so the alerts are there
    // when the console opens.
    run_jobs_now(p, None)?;
    let alerts = p
        .list("alice", Some("mi5/cyber"), Some("demo walkthrough"))?
        .items
        .iter()
        .filter(|m| m.derivation.as_deref() == Some(ALERT))
        .count();
    // Triage: the alerts grouped by rule and host within an hour; the first case taken by
    // bob and worked, so the case pages have a history to show.
    use bletchley_detect::cases::{Change, Grouping, Status, open_cases};
    let grouping = Grouping {
        by_rule: true,
        by_host: true,
        window_ms: 3_600_000,
        min_level: None,
    };
    // The agency's playbook first, so the cases that match its trigger run it as they open.
    p.add_collection(
        &bletchley_detect::playbook::playbooks_collection("mi5"),
        false,
    )?;
    bletchley_detect::playbook::add(
        p,
        "alice",
        "contain-credential-theft.yml",
        PLAYBOOK,
        Marking::parse("OFFICIAL")?,
    )?;
    let cases = open_cases(p, "alice", "mi5/cyber", &grouping, None)?;
    let runs = {
        let index = bletchley_index::access::open_synced(p)?;
        let mut lookup = bletchley_server::lookup::IndexLookup { index: &index };
        bletchley_detect::playbook::run_triggered(p, "alice", &mut lookup, &cases, None)?.runs
    };
    if let Some(first) = cases.first() {
        for change in [
            Change::Assign("bob".into()),
            Change::Status(Status::InProgress),
            Change::Note(
                "Same parent process on both hosts: checking the admin shares first.".into(),
            ),
        ] {
            bletchley_detect::cases::change_case(p, "alice", first, &change, None)?;
        }
    }
    // Every change, note and playbook step on the cases is an item of its own.
    let mut case_notes = 0;
    for id in &cases {
        case_notes += bletchley_detect::cases::case(p, "alice", id, None)?
            .history
            .len();
    }
    Ok(Cyber {
        logs: LOGS.len(),
        rules: RULES.len(),
        alerts,
        cases: cases.len(),
        case_notes,
        playbook_runs: runs.len(),
        waiting: runs.into_iter().find(|r| {
            r.steps
                .iter()
                .any(|s| s.state == bletchley_detect::playbook::StepState::AwaitingApproval)
        }),
    })
}
