//! PDF, DOCX, ZIP and e-mail on real bytes, including bombs and damage:
//! text where there is text, a flag where there is not, never a crash and
//! never an unbounded expansion.

use std::io::Write;

use bletchley_index::extract::{MAX_GENERATIONS, MAX_TEXT, extract, extract_item, parts};

/// A minimal, valid PDF: one page whose content stream shows `text`,
/// optionally Flate-compressed; byte offsets in the xref table are exact.
fn pdf(content_stream: &[u8], flate: bool) -> Vec<u8> {
    let (stream, filter) = if flate {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(content_stream).unwrap();
        (z.finish().unwrap(), " /Filter /FlateDecode")
    } else {
        (content_stream.to_vec(), "")
    };
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        {
            let mut s = format!("<< /Length {}{filter} >>\nstream\n", stream.len()).into_bytes();
            s.extend_from_slice(&stream);
            s.extend_from_slice(b"\nendstream");
            s
        },
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
    ];
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
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

fn page(text: &str) -> Vec<u8> {
    format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET").into_bytes()
}

pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<w:p><w:r><w:t xml:space=\"preserve\">{p}</w:t></w:r></w:p>"))
        .collect();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    zip_of(&[
        ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>"),
        ("word/document.xml", xml.as_bytes()),
    ])
}

pub(crate) fn email_with(name: &str, mime: &str, attachment: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "From: courier@example.org\r\nTo: handler@example.net\r\nSubject: files\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
--XX\r\nContent-Type: {mime}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n--XX--\r\n",
        wrapped.join("\r\n")
    )
    .into_bytes()
}

#[test]
fn pdf_text_layer_plain_and_compressed() {
    for flate in [false, true] {
        let e = extract(
            "report.pdf",
            &pdf(&page("Courier met VIKING in Porto"), flate),
        );
        assert_eq!(e.kind, "pdf");
        assert_eq!(e.flag, None, "flate={flate}");
        assert!(
            e.text.contains("Courier met VIKING in Porto"),
            "{:?}",
            e.text
        );
    }
    // Recognised by magic bytes whatever the name.
    let e = extract("scan0001", &pdf(&page("by magic"), true));
    assert!(e.text.contains("by magic"));
}

#[test]
fn corrupted_pdfs_are_flagged() {
    let good = pdf(&page("Courier met VIKING"), true);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("header only", b"%PDF-1.7\n".to_vec()),
        ("garbage", {
            let mut g = b"%PDF-1.4\n".to_vec();
            g.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
            g
        }),
        ("flipped bytes", {
            let mut f = good.clone();
            for i in (20..f.len()).step_by(7) {
                f[i] ^= 0x5a;
            }
            f
        }),
    ];
    for (what, bytes) in cases {
        let e = extract("bad.pdf", &bytes);
        assert_eq!(e.kind, "pdf", "{what}");
        assert!(e.flag.is_some(), "{what}: {:?}", e.text);
        assert!(e.text.len() < 1024, "{what}");
    }
}

#[test]
fn pdf_decompression_bomb_is_bounded() {
    // 300 MiB of page content compressed to a few hundred KiB.
    let mut content = page("visible start");
    content.resize(300 << 20, b' ');
    let bomb = pdf(&content, true);
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let e = extract("bomb.pdf", &bomb);
    assert!(e.flag.is_some(), "bomb not flagged");
    assert!(e.text.len() <= MAX_TEXT);
}

#[test]
fn docx_paragraphs_and_entities() {
    let e = extract(
        "minutes.docx",
        &docx(&[
            "Minutes of the meeting",
            "Call +44 7700 900123 &amp; mail viking@example.org",
        ]),
    );
    assert_eq!(e.kind, "docx");
    assert_eq!(e.flag, None);
    assert!(e.text.contains("Minutes of the meeting\n"), "{:?}", e.text);
    assert!(
        e.text.contains("+44 7700 900123 & mail viking@example.org"),
        "{:?}",
        e.text
    );
    let bad = extract("broken.docx", b"PK\x03\x04 not really a zip");
    assert!(bad.flag.is_some());
    let not_word = extract("other.docx", &zip_of(&[("readme.txt", b"hello")]));
    assert!(not_word.flag.unwrap().contains("not a Word document"));
}

#[test]
fn zip_entries_are_read_through_the_dispatch() {
    let inner = docx(&["Inner document names GREENFINCH"]);
    let z = zip_of(&[
        ("notes.txt", b"top level note"),
        ("inner/minutes.docx", &inner),
    ]);
    let e = extract("bundle.zip", &z);
    assert_eq!(e.flag, None);
    assert!(
        e.text.contains("top level note") && e.text.contains("GREENFINCH"),
        "{}",
        e.text
    );
}

#[test]
fn zip_bomb_inside_an_email_is_flagged_not_expanded() {
    let zeros = vec![0u8; 200 << 20];
    let bomb = zip_of(&[("a.txt", b"innocent"), ("zeros.bin", &zeros)]);
    drop(zeros);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let mail = email_with("holiday.zip", "application/zip", &bomb);
    let e = extract("msg.eml", &mail);
    assert_eq!(e.kind, "email");
    assert!(e.text.contains("See attached"), "{}", e.text);
    let flag = e.flag.expect("bomb flagged");
    assert!(flag.contains("zip bomb"), "{flag}");
    assert!(e.text.len() < 1 << 20);
    // Nested archives do not multiply the budget without end.
    let nested = zip_of(&[("level1.zip", &zip_of(&[("level2.zip", &bomb)]))]);
    let n = extract("nested.zip", &nested);
    assert!(n.flag.is_some());
    assert!(n.text.len() < 1 << 20);
}

#[test]
fn containers_yield_their_parts_within_the_same_limits() {
    // An e-mail's attachment comes out whole, named as attached.
    let inner = zip_of(&[
        ("dir/../notes.txt", b"GREENFINCH at noon"),
        ("b.txt", b"second"),
    ]);
    let mail = email_with("bundle.zip", "application/zip", &inner);
    let p = parts("msg.eml", &mail);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].title, "bundle.zip");
    assert_eq!(p[0].derivation, "attachment");
    assert_eq!(p[0].content, inner);
    // The archive's entries come out as members, names reduced to their
    // last component.
    let m = parts("bundle.zip", &inner);
    let titles: Vec<&str> = m.iter().map(|x| x.title.as_str()).collect();
    assert_eq!(titles, ["notes.txt", "b.txt"]);
    assert!(m.iter().all(|x| x.derivation == "member"));
    assert_eq!(m[0].content, b"GREENFINCH at noon");
    // As a stored item, the container's text names its parts without their
    // contents (they are items of their own) ...
    let own = extract_item("msg.eml", &mail, 0);
    assert!(own.text.contains("bundle.zip") && own.text.contains("See attached"));
    assert!(!own.text.contains("GREENFINCH"), "{}", own.text);
    let own = extract_item("bundle.zip", &inner, 1);
    assert!(own.text.contains("notes.txt") && !own.text.contains("GREENFINCH"));
    // ... and past the last generation it says its parts were not extracted.
    let deep = extract_item("bundle.zip", &inner, MAX_GENERATIONS);
    assert!(deep.flag.is_some_and(|f| f.contains("not extracted")));
    // Plain files have no parts.
    assert!(parts("notes.txt", b"From: nobody").len() <= 1);
    assert!(parts("report.pdf", &pdf(&page("x"), false)).is_empty());
}

#[test]
fn a_zip_bomb_yields_no_expanded_part() {
    let zeros = vec![0u8; 200 << 20];
    let bomb = zip_of(&[("a.txt", b"innocent"), ("zeros.bin", &zeros)]);
    drop(zeros);
    let m = parts("bomb.zip", &bomb);
    // The innocent entry before it, then reading stops.
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].title, "a.txt");
    // Its own extraction says why.
    let own = extract_item("bomb.zip", &bomb, 0);
    assert!(own.flag.is_some_and(|f| f.contains("zip bomb")));
}

#[test]
fn pdf_attached_to_an_email_is_indexed() {
    let mail = email_with(
        "report.pdf",
        "application/pdf",
        &pdf(&page("harbour cafe at dawn"), true),
    );
    let e = extract("msg.eml", &mail);
    assert_eq!(e.flag, None);
    assert!(e.text.contains("harbour cafe at dawn"), "{}", e.text);
}

#[test]
fn one_gigabyte_csv_line_is_bounded() {
    // A single CSV line of 1 GiB: the text handed to the index stays
    // within MAX_TEXT and the item is flagged, not dropped.
    let mut big = Vec::with_capacity((1 << 30) + 16);
    big.extend_from_slice(b"caller,callee\n");
    big.resize((1 << 30) + 14, b'7');
    big.push(b'\n');
    let e = extract("cdr.csv", &big);
    drop(big);
    assert_eq!(e.kind, "csv");
    assert!(e.text.len() <= MAX_TEXT, "{}", e.text.len());
    assert!(e.flag.unwrap().contains("CSV line 2 is longer"));
}

#[test]
fn invalid_utf8_is_flagged_or_replaced() {
    let mut t = b"plain text with a bad byte ".to_vec();
    t.extend_from_slice(&[0xc3, 0x28, 0xff]);
    let e = extract("note.txt", &t);
    assert!(e.flag.is_some() || e.text.contains('\u{fffd}'));
    let c = extract("x.csv", &[b'a', b',', 0xff, b'\n']);
    assert_eq!(c.kind, "csv");
    let j = extract("x.jsonl", &[b'{', 0xff, b'}', b'\n']);
    assert!(j.flag.is_some());
}
