//! What a transcription job has made so far: read only by whoever may read the recording,
//! sealed to its job and its recording (a host that moves it between jobs is caught), and
//! gone when the job finishes or the recording is shredded.

use bletchley_ai::follow::transcription_view;
use bletchley_ai::pipeline::PartialTranscription;
use bletchley_ai::{Segment, Task, Transcript};
use bletchley_store::Error;
use serde_json::Value;

use crate::common::{Env, open_platform};

fn segment(start: f64, text: &str) -> Segment {
    Segment {
        start,
        end: start + 2.0,
        text: text.into(),
        avg_logprob: -0.2,
        confidence: 0.8,
        no_speech_prob: 0.01,
        temperature: 0.0,
        words: Vec::new(),
    }
}

fn partial(texts: &[&str]) -> Vec<u8> {
    let t = Transcript {
        language: "es".into(),
        language_probability: 0.0,
        task: Task::Transcribe,
        duration: 60.0,
        segments: texts
            .iter()
            .enumerate()
            .map(|(i, t)| segment(i as f64 * 2.0, t))
            .collect(),
        timing: Default::default(),
    };
    serde_json::to_vec(&PartialTranscription {
        transcript: Some(t),
        translation: None,
    })
    .expect("json")
}

fn partial_rows(env: &Env) -> i64 {
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open catalog");
    db.query_row("SELECT count(*) FROM job_partials", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn a_running_jobs_partial_transcript_reads_only_as_its_recording_and_only_from_its_own_job() {
    let env = Env::new();
    env.basic();
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    let a = env.file("call-a.wav", b"RIFF not really audio");
    let b = env.file("call-b.wav", b"RIFF not really audio either");
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&a, &b]);
    let mut p = open_platform(&env);
    let jobs = [
        p.claim_job().expect("claim").expect("a job"),
        p.claim_job().expect("claim").expect("a job"),
    ];
    let job_of = |id: &str| jobs.iter().find(|j| j.item == id).expect("job of item");
    p.save_job_partial(
        job_of(&ids[0]),
        &partial(&["Hola.", "¿Dónde está el barco?"]),
    )
    .expect("save");
    p.save_job_partial(job_of(&ids[1]), &partial(&["Otra llamada."]))
        .expect("save");
    // A newer partial takes the place of the older one.
    p.save_job_partial(
        job_of(&ids[0]),
        &partial(&["Hola.", "¿Dónde está el barco?", "En el puerto."]),
    )
    .expect("save");

    let view = transcription_view(&mut p, "alice", &ids[0], None).expect("alice reads");
    assert!(view.running(), "the job is running");
    let shown = view.transcript.expect("a partial transcript");
    assert!(shown.item.is_none(), "not a stored item yet");
    let texts: Vec<&str> = shown
        .transcript
        .segments
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(texts, ["Hola.", "¿Dónde está el barco?", "En el puerto."]);
    assert!(view.translation.is_none());
    assert_eq!(view.recording.map(|m| m.marking).as_deref(), Some("SECRET"));

    // carol (OFFICIAL) may not read the SECRET recording: its partial reads as absent.
    let refused = transcription_view(&mut p, "carol", &ids[0], None);
    assert!(
        matches!(refused, Err(Error::NotFoundOrNotPermitted { .. })),
        "{refused:?}"
    );
    drop(p);

    // The host swaps the two jobs' partial outputs: each opens only as its own job's.
    {
        let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open");
        let (ja, jb) = (job_of(&ids[0]).id, job_of(&ids[1]).id);
        db.execute_batch(&format!(
            "UPDATE job_partials SET job = -1 WHERE job = {ja};
             UPDATE job_partials SET job = {ja} WHERE job = {jb};
             UPDATE job_partials SET job = {jb} WHERE job = -1;"
        ))
        .expect("swap");
    }
    let mut p = open_platform(&env);
    let swapped = transcription_view(&mut p, "alice", &ids[0], None);
    match swapped {
        Err(Error::Damaged(why)) => assert!(why.contains("partial"), "{why}"),
        other => panic!("a swapped partial was read: {other:?}"),
    }

    // Finishing a job takes its partial with it; shredding the recording leaves nothing to
    // open for the other.
    p.fail_job(job_of(&ids[0]), "not audio", true)
        .expect("fail");
    drop(p);
    assert_eq!(partial_rows(&env), 1, "the failed job's partial is gone");
    env.ok(&["--as", "boss", "shred", &ids[1]]);
    let mut p = open_platform(&env);
    let gone = transcription_view(&mut p, "alice", &ids[1], None);
    assert!(
        matches!(gone, Err(Error::NotFoundOrNotPermitted { .. })),
        "{gone:?}"
    );
    drop(p);

    // Every look was audited as a read of the recording, refusals included.
    let trail: Vec<Value> = env
        .ok(&["audit", "show", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let count = |who: &str, action: &str, outcome: &str| {
        trail
            .iter()
            .filter(|e| e["principal"] == who && e["action"] == action && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("alice", "item.partial", "allowed"), 1);
    assert_eq!(
        count("alice", "item.partial", "refused"),
        1,
        "the swapped partial is recorded as damage"
    );
    assert!(count("carol", "item.get", "denied") >= 1, "carol's refusal");
    env.ok(&["audit", "verify"]);
}

/// The recording's page shows what the running job has made, marked as still coming so that
/// the page's script asks for the section again, and the section alone answers that ask; a
/// principal who may not read the recording gets neither.
#[test]
fn the_console_shows_a_running_jobs_segments_and_refreshes_them() {
    use crate::server::{PW, Server, set_password};
    use reqwest::StatusCode;
    let env = Env::new();
    env.basic();
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    for who in ["alice", "carol"] {
        set_password(&env, who);
    }
    let f = env.file("call.wav", b"RIFF not really audio");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    // This test's own worker holds the job (the server's worker leaves it to its lease).
    let mut p = open_platform(&env);
    let job = p.claim_job().expect("claim").expect("the job");
    p.save_job_partial(&job, &partial(&["Hola.", "¿Dónde está el barco?"]))
        .expect("save");
    p.job_progress(job.id, 0.25).expect("progress");
    drop(p);

    let s = Server::start(&env);
    let page = |c: &reqwest::blocking::Client, path: &str| {
        let r = c.get(format!("{}{path}", s.url)).send().expect("get");
        (r.status(), r.text().expect("text"))
    };
    let login = |name: &str| {
        let c = s.client();
        let r = c
            .post(format!("{}/login", s.url))
            .form(&[("name", name), ("password", PW)])
            .send()
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{name}");
        c
    };
    let alice = login("alice");
    let (st, html) = page(&alice, &format!("/items/{id}"));
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("data-running=\"1\""), "{html}");
    assert!(html.contains("Transcribing: 25% done"), "{html}");
    assert!(html.contains("¿Dónde está el barco?"), "{html}");
    assert!(html.contains("/static/transcript.js"));
    assert!(
        !html.contains("id=\"downloads\""),
        "no subtitles before the texts are stored"
    );
    let (st, fragment) = page(&alice, &format!("/items/{id}/transcript"));
    assert_eq!(st, StatusCode::OK);
    assert!(fragment.starts_with("<section id=\"transcript\" data-running=\"1\""));
    assert_eq!(fragment.matches("<tr id=\"seg-").count(), 2, "{fragment}");
    // The same through the JSON API.
    let api = |c: &reqwest::blocking::Client| {
        let r = c
            .get(format!("{}/api/items/{id}/transcription", s.url))
            .send()
            .expect("get");
        let status = r.status();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let (st, t) = api(&alice);
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["running"], true, "{t}");
    assert_eq!(t["job"]["state"], "running", "{t}");
    assert!(
        (t["job"]["progress"].as_f64().unwrap_or(0.0) - 0.25).abs() < 1e-6,
        "{t}"
    );
    assert_eq!(t["transcript"]["partial"], true, "{t}");
    assert_eq!(t["transcript"]["item"], Value::Null, "{t}");
    assert_eq!(
        t["transcript"]["segments"][1]["text"], "¿Dónde está el barco?",
        "{t}"
    );
    assert_eq!(t["translation"], Value::Null, "{t}");
    // Once the job is over, the section says so and stops asking.
    let mut p = open_platform(&env);
    p.fail_job(&job, "not audio", true).expect("fail");
    drop(p);
    let (_, fragment) = page(&alice, &format!("/items/{id}/transcript"));
    assert!(fragment.contains("data-running=\"0\""), "{fragment}");
    assert!(
        fragment.contains("Transcription failed: not audio"),
        "{fragment}"
    );
    assert!(!fragment.contains("barco"), "the partial went with the job");
    let (_, t) = api(&alice);
    assert_eq!(t["running"], false, "{t}");
    assert_eq!(t["job"]["state"], "failed", "{t}");
    assert_eq!(t["job"]["error"], "not audio", "{t}");
    assert_eq!(t["transcript"], Value::Null, "{t}");
    // A stored transcript (as a worker derives it) is what every reader gets from then on.
    let mut p = open_platform(&env);
    let stored = p
        .derive(
            &bletchley_store::Actor::Principal("alice".into()),
            &id,
            "transcript",
            vec![bletchley_store::NewItem {
                title: "call.wav.transcript.json".into(),
                content: serde_json::to_vec(
                    &serde_json::from_slice::<PartialTranscription>(&partial(&["Hola."]))
                        .expect("json")
                        .transcript,
                )
                .expect("json"),
            }],
        )
        .expect("derive")
        .remove(0);
    drop(p);
    let (_, t) = api(&alice);
    assert_eq!(t["transcript"]["partial"], false, "{t}");
    assert_eq!(t["transcript"]["item"], stored.as_str(), "{t}");
    assert_eq!(t["transcript"]["marking"], "SECRET", "{t}");
    assert_eq!(t["transcript"]["segments"][0]["text"], "Hola.", "{t}");
    let (st, srt) = page(
        &alice,
        &format!("/items/{id}/subtitles?of=transcript&format=srt"),
    );
    assert_eq!(st, StatusCode::OK);
    assert!(
        srt.starts_with("1\n00:00:00,000 --> 00:00:02,000\nHola."),
        "{srt}"
    );
    // carol may not read the SECRET recording.
    let carol = login("carol");
    assert_eq!(api(&carol).0, StatusCode::NOT_FOUND);
    for path in [
        format!("/items/{id}"),
        format!("/items/{id}/transcript"),
        format!("/items/{id}/subtitles?of=transcript&format=srt"),
    ] {
        let (st, html) = page(&carol, &path);
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(!html.contains("barco"));
    }
}
