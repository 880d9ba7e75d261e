//! The oversight report: every figure matches a count made here, independently, over the
//! opened audit log; every sample carries a proof that the independent checker accepts;
//! the PDF opens and its pages are drawn on; only an overseer may compile it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::common::{Env, audit_lines};

/// The classification of a marking banner: its first `//` part (every banner this test
/// uses starts with its classification).
fn classification(banner: &str) -> String {
    banner.split("//").next().unwrap_or("").trim().to_owned()
}

/// Rows of a table or weekly figure as `cells joined by |` → (count, seqs).
fn rows(fig: &serde_json::Value) -> BTreeMap<String, (u64, Vec<u64>)> {
    let body = &fig["body"];
    let rows = body["rows"].as_array().or(body["weeks"].as_array());
    rows.into_iter()
        .flatten()
        .map(|r| {
            let cells: Vec<&str> = r["cells"]
                .as_array()
                .expect("cells")
                .iter()
                .map(|c| c.as_str().expect("cell"))
                .collect();
            let seqs: Vec<u64> = r["seqs"]
                .as_array()
                .expect("seqs")
                .iter()
                .map(|s| s.as_u64().expect("seq"))
                .collect();
            (cells.join("|"), (r["count"].as_u64().expect("count"), seqs))
        })
        .collect()
}

/// Counts `lines` selected by `pick` into rows keyed by `key`.
fn expect_rows(
    lines: &[serde_json::Value],
    pick: impl Fn(&serde_json::Value) -> bool,
    key: impl Fn(&serde_json::Value) -> String,
) -> BTreeMap<String, (u64, Vec<u64>)> {
    let mut out: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for l in lines.iter().filter(|l| pick(l)) {
        let r = out.entry(key(l)).or_default();
        r.0 += 1;
        r.1.push(l["seq"].as_u64().expect("seq"));
    }
    out
}

fn figure<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no figure {id}"))
}

#[test]
fn the_reports_figures_match_an_independent_count_and_its_pdf_renders() {
    let env = Env::new();
    env.basic();
    env.ok(&["agency", "add", "gchq"]);
    env.ok(&[
        "principal",
        "add",
        "carol",
        "--agency",
        "gchq",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
    ]);
    env.ok(&[
        "principal",
        "add",
        "olivia",
        "--agency",
        "gchq",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
        "--roles",
        "overseer",
    ]);
    env.ok(&["collection", "add", "gchq/sig"]);
    let a = env.file("a.txt", b"a SECRET report on the harbour");
    let b = env.file("b.txt", b"a second SECRET report");
    let ts = env.file("ts.txt", b"a TOP SECRET STRAP1 report");
    let g = env.file("g.txt", b"a GCHQ intercept summary");
    let s1 = env.ingest("alice", "mi5/ct", "SECRET", &[&a, &b]);
    let s2 = env.ingest("alice", "mi5/ct", "TOP SECRET//STRAP1", &[&ts]);
    let s3 = env.ingest("carol", "gchq/sig", "SECRET", &[&g]);
    let id = |l: &str| l.split_whitespace().next().expect("id").to_owned();
    let (ia, ib, its, ig) = (id(&s1[0]), id(&s1[1]), id(&s2[0]), id(&s3[0]));
    // Reads: allowed, with and without justification; denied across agencies.
    for i in [&ia, &ib, &its] {
        env.ok(&["--as", "alice", "get", i]);
    }
    env.ok(&["--as", "alice", "get", &ia, "--justification", "op HARBOUR"]);
    env.ok(&["--as", "boss", "get", &ib]);
    env.ok(&["--as", "carol", "get", &ig]);
    env.fails(&["--as", "carol", "get", &ia]);
    env.fails(&["--as", "alice", "get", &ig]);
    // A shred and changes of people.
    env.ok(&["--as", "boss", "shred", &ib]);
    env.ok(&["principal", "disable", "carol", "--reason", "left"]);
    env.ok(&["principal", "enable", "carol"]);

    // Only an overseer compiles it, and the refusal is audited.
    let e = env.fails(&[
        "--as",
        "alice",
        "oversight",
        "report",
        "--from",
        "2000-01-01",
        "--json",
        "-",
    ]);
    assert!(e.contains("overseer"), "{e}");
    let pdf = env.root.join("report.pdf");
    let json = env.root.join("report.json");
    env.ok(&[
        "--as",
        "olivia",
        "oversight",
        "report",
        "--from",
        "2000-01-01",
        "--out",
        pdf.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report json"))
            .expect("report is JSON");

    // The independent count, over the entries the oversight key opens.
    let lines = audit_lines(&env);
    let agency = |who: &str| {
        match who {
            "alice" | "boss" => "mi5",
            "carol" | "olivia" => "gchq",
            _ => "(platform)",
        }
        .to_owned()
    };
    let access = |l: &serde_json::Value| l["action"] == "item.get" && l["outcome"] == "allowed";
    let who = |l: &serde_json::Value| l["principal"].as_str().expect("principal").to_owned();
    let coll = |l: &serde_json::Value| l["about"]["collection"].as_str().expect("about").to_owned();
    let class = |l: &serde_json::Value| {
        classification(l["about"]["marking"].as_str().expect("about marking"))
    };
    let by_agency = expect_rows(&lines, access, |l| agency(&who(l)));
    assert_eq!(rows(figure(&report, "accesses-by-agency")), by_agency);
    assert_eq!(by_agency["mi5"].0, 5);
    assert_eq!(by_agency["gchq"].0, 1);
    assert_eq!(
        rows(figure(&report, "accesses-by-principal")),
        expect_rows(&lines, access, |l| format!(
            "{}|{}",
            who(l),
            agency(&who(l))
        ))
    );
    let by_coll = expect_rows(&lines, access, coll);
    assert_eq!(rows(figure(&report, "accesses-by-collection")), by_coll);
    assert_eq!(by_coll["mi5/ct"].0, 5);
    let by_class = expect_rows(&lines, access, class);
    assert_eq!(
        rows(figure(&report, "accesses-by-classification")),
        by_class
    );
    assert_eq!(by_class["TOP SECRET"].0, 1);
    assert_eq!(by_class["SECRET"].0, 5);
    // All in this week: one bar holds every access.
    let weeks = rows(figure(&report, "accesses-per-week"));
    assert_eq!(weeks.values().map(|r| r.0).sum::<u64>(), 6);
    assert_eq!(weeks.values().filter(|r| r.0 > 0).count(), 1);
    let heat = &figure(&report, "access-heat-map")["body"];
    let cell = |p: &str, c: &str| {
        let r = heat["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .position(|x| x == p)
            .expect("row");
        let k = heat["columns"]
            .as_array()
            .expect("cols")
            .iter()
            .position(|x| x == c)
            .expect("col");
        heat["cells"][r][k].as_u64().expect("cell")
    };
    assert_eq!(cell("alice", "mi5/ct"), 4);
    assert_eq!(cell("boss", "mi5/ct"), 1);
    assert_eq!(cell("carol", "gchq/sig"), 1);
    assert_eq!(cell("carol", "mi5/ct"), 0);
    let queried = |l: &serde_json::Value| {
        !l["justification"].is_null()
            && l["action"] != "item.ingest"
            && l["action"] != "item.derive"
    };
    let justified = expect_rows(&lines, queried, |l| {
        format!(
            "{}|{}|{}",
            who(l),
            l["action"].as_str().expect("action"),
            l["justification"].as_str().expect("justification")
        )
    });
    assert_eq!(rows(figure(&report, "justified-queries")), justified);
    assert_eq!(justified["alice|item.get|op HARBOUR"].0, 1);
    let denied = |l: &serde_json::Value| l["outcome"] == "denied" || l["outcome"] == "refused";
    let denials = expect_rows(&lines, denied, |l| {
        format!(
            "{}|{}|{}|{}",
            who(l),
            l["action"].as_str().expect("action"),
            l["outcome"].as_str().expect("outcome"),
            l["reason"].as_str().unwrap_or("")
        )
    });
    assert_eq!(rows(figure(&report, "denials")), denials);
    // carol's and alice's reads across agencies, and alice's attempt at the report.
    let denial_total: u64 = denials.values().map(|r| r.0).sum();
    assert!(denial_total >= 3, "{denials:?}");
    assert!(
        denials
            .keys()
            .any(|k| k.starts_with("alice|oversight.report|"))
    );
    let shreds = expect_rows(
        &lines,
        |l| l["action"] == "item.shred" && l["outcome"] == "allowed",
        |l| format!("item.shred|{}|{}", coll(l), class(l)),
    );
    assert_eq!(rows(figure(&report, "destructions")), shreds);
    assert_eq!(shreds["item.shred|mi5/ct|SECRET"].0, 1);
    let people = expect_rows(
        &lines,
        |l| {
            l["outcome"] == "allowed"
                && [
                    "principal.add",
                    "principal.disable",
                    "principal.enable",
                    "principal.set",
                    "principal.suspend",
                    "principal.credentials-revoked",
                    "review.confirm",
                ]
                .contains(&l["action"].as_str().expect("action"))
        },
        |l| {
            format!(
                "{}|{}|{}",
                l["action"].as_str().expect("action"),
                l["targets"][0].as_str().unwrap_or(""),
                who(l)
            )
        },
    );
    assert_eq!(rows(figure(&report, "people")), people);
    assert_eq!(people["principal.disable|carol|operator"].0, 1);
    assert_eq!(people["principal.add|olivia|operator"].0, 1);

    // Every figure's source entries are its rows' entries; its sample is among them and
    // proved; the proofs check out in the checker written from the specs.
    let proved: BTreeSet<u64> = report["proofs"]
        .as_array()
        .expect("proofs")
        .iter()
        .map(|p| p["index"].as_u64().expect("index"))
        .collect();
    for f in report["figures"].as_array().expect("figures") {
        let seqs: BTreeSet<u64> = f["seqs"]
            .as_array()
            .expect("seqs")
            .iter()
            .map(|s| s.as_u64().expect("seq"))
            .collect();
        if f["body"]["kind"] != "heat" {
            let from_rows: BTreeSet<u64> = rows(f).values().flat_map(|r| r.1.clone()).collect();
            assert_eq!(seqs, from_rows, "{}", f["id"]);
        }
        for s in f["sample"].as_array().expect("sample") {
            let s = s.as_u64().expect("sample seq");
            assert!(seqs.contains(&s) && proved.contains(&s), "{}", f["id"]);
        }
    }
    assert!(proved.len() >= 3);
    let vkey = std::fs::read_to_string(env.data.join("audit/verifier.vkey")).expect("vkey");
    let py = std::env::var("BLETCHLEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/c2sp_check.py"
        ))
        .args(["report", json.to_str().expect("utf-8"), vkey.trim()])
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("SKIPPED: the independent proof check: no {py}: {e}"),
    }

    // The PDF opens, and every page has something drawn on it.
    let bytes = std::fs::read(&pdf).expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"));
    let pages = env.root.join("page");
    match Command::new("pdftoppm")
        .args(["-r", "50", "-gray"])
        .arg(&pdf)
        .arg(&pages)
        .output()
    {
        Err(e) => eprintln!(
            "SKIPPED: rendering the report: no pdftoppm ({e}); scripts/test installs poppler-utils"
        ),
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let mut rendered: Vec<_> = std::fs::read_dir(&env.root)
                .expect("dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pgm"))
                .collect();
            rendered.sort();
            assert!(rendered.len() >= 2, "{rendered:?}");
            for page in rendered {
                let inked = inked_above_footer(&std::fs::read(&page).expect("page"));
                assert!(
                    inked > 300,
                    "{} is blank ({inked} inked pixels)",
                    page.display()
                );
            }
        }
    }
}

/// Pixels with ink on them (darker than light grey) in a binary 8-bit PGM (P5) page at
/// 50 dpi, above the footer (the bottom 60 points), so that a page holding only its page
/// number counts as blank.
fn inked_above_footer(pgm: &[u8]) -> usize {
    assert!(pgm.starts_with(b"P5"), "not a binary PGM");
    // Header: "P5", width, height, maxval, separated by whitespace, then one byte.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 && i < pgm.len() {
        while i < pgm.len() && pgm[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < pgm.len() && !pgm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[start..i]).into_owned());
    }
    let width: usize = fields[1].parse().expect("width");
    let height: usize = fields[2].parse().expect("height");
    let pixels = &pgm[i + 1..];
    assert_eq!(pixels.len(), width * height, "PGM size");
    let footer_rows = 60 * 50 / 72;
    pixels[..width * (height - footer_rows)]
        .iter()
        .filter(|&&v| v < 200)
        .count()
}

#[test]
fn the_overseer_reads_the_report_on_the_server_and_no_one_else_does() {
    use crate::common::count_action;
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;

    let env = Env::new();
    env.basic();
    env.ok(&[
        "principal",
        "add",
        "olivia",
        "--agency",
        "mi5",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
        "--roles",
        "overseer",
    ]);
    let a = env.file("a.txt", b"a SECRET report on the harbour");
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&a]);
    let id = ids[0].split_whitespace().next().expect("id").to_owned();
    env.ok(&["--as", "alice", "get", &id]);
    set_password(&env, "olivia");
    set_password(&env, "alice");
    let s = Server::start(&env);
    let overseer = s.client();
    s.login(&overseer, "olivia");
    let analyst = s.client();
    s.login(&analyst, "alice");

    let r = overseer
        .get(format!("{}/api/oversight/report?from=2000-01-01", s.url))
        .send()
        .expect("report");
    assert_eq!(r.status(), StatusCode::OK);
    let report: serde_json::Value = r.json().expect("report json");
    assert_eq!(
        rows(figure(&report, "accesses-by-principal"))["alice|mi5"].0,
        1
    );
    let r = overseer
        .get(format!(
            "{}/api/oversight/report.pdf?from=2000-01-01",
            s.url
        ))
        .send()
        .expect("pdf");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"].to_str().expect("type"),
        "application/pdf"
    );
    assert!(r.bytes().expect("pdf").starts_with(b"%PDF-"));
    let page = overseer
        .get(format!("{}/oversight?from=2000-01-01", s.url))
        .send()
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().expect("html");
    assert!(
        html.contains("id=\"fig-accesses-by-agency\" data-total=\"1\""),
        "{html}"
    );
    assert!(html.contains("<svg class=\"chart\" id=\"weekly\""));
    assert!(html.contains("id=\"proofs\""));
    // Bad periods are refused.
    let r = overseer
        .get(format!("{}/api/oversight/report?from=2026-13-01", s.url))
        .send()
        .expect("bad");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = overseer
        .get(format!(
            "{}/api/oversight/report?from=2026-02-01&to=2026-01-01",
            s.url
        ))
        .send()
        .expect("bad");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An analyst is refused, on the API and the page, and the refusal is audited.
    let r = analyst
        .get(format!("{}/api/oversight/report", s.url))
        .send()
        .expect("refused");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = analyst
        .get(format!("{}/oversight", s.url))
        .send()
        .expect("refused page");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    drop(s);
    let lines = audit_lines(&env);
    assert_eq!(count_action(&lines, "oversight.report", "allowed"), 3);
    assert_eq!(count_action(&lines, "oversight.report", "refused"), 2);
}
