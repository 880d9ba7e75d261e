//! Entry points for the fuzzer (`bletchley-fuzz`): documents and archives as an upload brings
//! them, and search queries as a principal types them. Each returns a short signature of the
//! outcome; a panic (or a budget overrun) is the finding.

use std::io::Write;
use std::sync::OnceLock;

use bletchley_crypto::SecretKey;
use bletchley_policy::{
    Classification, Collection, CollectionId, Gate, Nation, Principal, Role, Visibility,
};

use crate::extract;
use crate::ingest::{Budget, MAX_EXPANDED, expand};
use crate::search::{SearchIndex, SearchRequest, SortBy};

/// The names an upload may carry, chosen by the input's first byte.
const TITLES: [&str; 9] = [
    "a.txt", "a.pdf", "a.zip", "a.eml", "a.docx", "a.html", "a.csv", "a.json", "a",
];

fn split(data: &[u8]) -> (&'static str, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (TITLES[b as usize % TITLES.len()], rest),
        None => (TITLES[0], data),
    }
}

/// A document's text and parts, as ingest and the indexer extract them.
pub fn document(data: &[u8]) -> String {
    let (title, content) = split(data);
    let text = extract::extract_item(title, content, 0);
    let parts = extract::parts(title, content);
    format!(
        "{title} text:{} flag:{} parts:{}",
        !text.text.is_empty(),
        text.flag.is_some(),
        parts.len().min(3)
    )
}

/// An upload's whole nesting (archives in archives, attachments of attachments) within one
/// budget, as ingest expands it before storing anything.
pub fn archive_nesting(data: &[u8]) -> String {
    let (title, content) = split(data);
    let mut budget = Budget::default();
    let r = expand(title, content, 0, &mut budget);
    // One archive past the limit is read (within its own bound) before the total is checked.
    assert!(
        budget.bytes <= MAX_EXPANDED + extract::MAX_INFLATED,
        "the expansion went past its budget before stopping: {} parts, {} bytes",
        budget.parts,
        budget.bytes
    );
    match r {
        Ok(nodes) => format!("ok {}", nodes.len().min(3)),
        Err(_) => "over budget".into(),
    }
}

struct Searcher {
    index: SearchIndex,
    gate: Gate,
    catalog: Vec<Collection>,
}

fn searcher() -> &'static Searcher {
    static S: OnceLock<Searcher> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bletchley-fuzz-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("fuzz index directory");
        let index = SearchIndex::open(&dir, SecretKey::from_bytes([3u8; 32]), Nation::gbr())
            .expect("open index");
        let p = Principal {
            name: "alice".into(),
            agency: "mi5".into(),
            clearance: Classification::Secret,
            compartments: Default::default(),
            nationality: Nation::gbr(),
            roles: [Role::Analyst].into_iter().collect(),
            standing: Default::default(),
            reviewed_s: None,
        };
        let catalog = vec![Collection {
            id: CollectionId(1),
            agency: "mi5".into(),
            name: "ct".into(),
            bulk: false,
        }];
        let vis = Visibility::compute(&p, &catalog, &[], 0);
        Searcher {
            index,
            gate: Gate::new(p, vis, Nation::gbr()),
            catalog,
        }
    })
}

/// A search query as typed (the API's `q`), through the query parser and the gated search.
pub fn search_query(data: &[u8]) -> String {
    let s = searcher();
    let admitted = s.gate.admit(s.catalog.clone(), None);
    let req = SearchRequest {
        query: String::from_utf8_lossy(data).into_owned(),
        limit: 10,
        offset: 0,
        sort: SortBy::Relevance,
        facets: true,
    };
    match s.index.search(&admitted, &req) {
        Ok(r) => format!("ok {}", r.total.min(1)),
        Err(e) => e
            .to_string()
            .chars()
            .take_while(|c| !c.is_ascii_digit() && *c != '"' && *c != '\'')
            .take(60)
            .collect(),
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if w.start_file(*name, opts).is_err() || w.write_all(data).is_err() {
            return Vec::new();
        }
    }
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn with_title(title: &str, content: Vec<u8>) -> Vec<u8> {
    let at = TITLES.iter().position(|t| *t == title).unwrap_or(0) as u8;
    let mut out = vec![at];
    out.extend(content);
    out
}

const EML: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: meet\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nCall +44 7700 900123 at 10.\r\n--XX\r\nContent-Type: text/plain; name=\"n.txt\"\r\nContent-Disposition: attachment; filename=\"n.txt\"\r\n\r\nnotes\r\n--XX--\r\n";

/// A vector index file's plaintext (what opens under the index key), parsed whole and, when
/// accepted, every item's vectors read back.
pub fn vector_index(data: &[u8]) -> String {
    match crate::vectors::VectorIndex::from_bytes(data) {
        Ok(index) => {
            let mut read = 0;
            for item in index.items() {
                read += index.vectors_of(&item).len();
            }
            format!("ok {} {read}", index.len())
        }
        Err(e) => e.to_string().chars().take(40).collect(),
    }
}

/// An item's sealed vectors row's plaintext, parsed.
pub fn item_vectors(data: &[u8]) -> String {
    match bletchley_store::vectors::ItemVectors::from_bytes(data) {
        Ok(v) => format!("ok {}", v.chunks.len()),
        Err(e) => e.to_string().chars().take(40).collect(),
    }
}

fn vector_seeds() -> (Vec<u8>, Vec<u8>) {
    let class = crate::vectors::AccessClass::of(
        bletchley_policy::CollectionId(1),
        &bletchley_policy::Marking::parse("SECRET").expect("static banner"),
    );
    let mut index = crate::vectors::VectorIndex::new(4);
    let vectors = vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.6, 0.8, 0.0]];
    let _ = index.add(class, "item-1", &[(0, 10), (10, 25)], &vectors);
    let row = bletchley_store::vectors::ItemVectors {
        model: "all-minilm-l6-v2".into(),
        dim: 4,
        chunks: vectors
            .iter()
            .enumerate()
            .map(|(i, v)| bletchley_store::vectors::VectorChunk {
                start: i as u64 * 10,
                end: i as u64 * 10 + 10,
                vector: v.clone(),
            })
            .collect(),
    };
    (index.to_bytes(), row.to_bytes().unwrap_or_default())
}

/// Valid inputs to start from, per entry point.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let docx = zip_of(&[(
        "word/document.xml",
        b"<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>hello</w:t></w:r></w:p></w:body></w:document>",
    )]);
    let inner = zip_of(&[("a.txt", b"inner text"), ("m.eml", EML.as_bytes())]);
    let nested = zip_of(&[("inner.zip", &inner), ("b.txt", b"second")]);
    match target {
        "vector_index" => vec![vector_seeds().0],
        "item_vectors" => vec![vector_seeds().1],
        "document" | "archive_nesting" => vec![
            with_title("a.txt", b"Meet at the docks, call +44 7700 900123".to_vec()),
            with_title("a.pdf", pdf("hello pdf")),
            with_title("a.zip", nested),
            with_title("a.eml", EML.as_bytes().to_vec()),
            with_title("a.docx", docx),
            with_title(
                "a.html",
                b"<html><body><p>x <b>y</b></p></body></html>".to_vec(),
            ),
            with_title("a.csv", b"a,b\n1,2\n".to_vec()),
        ],
        "search_query" => [
            "docks",
            "\"meet at\" AND NOT call",
            "collection:mi5/ct type:pdf lang:en from:2024-01-01 to:2025-01-01",
            "phone:+447700900123 OR email:a@example.org",
            "dokcs~",
            "(a OR b) AND c*",
        ]
        .iter()
        .map(|q| q.as_bytes().to_vec())
        .collect(),
        _ => Vec::new(),
    }
}
