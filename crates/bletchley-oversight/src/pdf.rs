//! The report as a PDF, drawn with `pdf-writer` from the standard fonts (Helvetica for
//! prose, Courier for data, so that columns line up and nothing is embedded): A4 pages,
//! tables, a bar chart per week and a heat map, then the sample proofs.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::report::{Body, Figure, Report, Row, date, ranges};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const TOP: f32 = HEIGHT - MARGIN;
const BOTTOM: f32 = MARGIN + 20.0;
const INNER: f32 = WIDTH - 2.0 * MARGIN;
/// Courier's advance is 0.6 em for every glyph.
const MONO_EM: f32 = 0.6;
/// A conservative mean Helvetica advance, for wrapping prose.
const SANS_EM: f32 = 0.5;
/// Rows of one table drawn in the PDF; the rest are counted, and are in the JSON.
const MAX_ROWS: usize = 250;

const SANS: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");
const MONO: Name = Name(b"F3");

/// Draws pages one after another, starting a new one when the next block does not fit.
struct Pages {
    done: Vec<Content>,
    page: Content,
    y: f32,
    title: String,
}

impl Pages {
    fn new(title: String) -> Pages {
        Pages {
            done: Vec::new(),
            page: Content::new(),
            y: TOP,
            title,
        }
    }

    /// Makes room for `height` points, turning the page if needed.
    fn room(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.turn();
        }
    }

    fn turn(&mut self) {
        let page = std::mem::replace(&mut self.page, Content::new());
        self.done.push(page);
        self.y = TOP;
    }

    fn text(&mut self, font: Name, size: f32, x: f32, y: f32, s: &str) {
        self.page
            .begin_text()
            .set_font(font, size)
            .next_line(x, y)
            .show(Str(&win_ansi(s)))
            .end_text();
    }

    /// Text turned a quarter counter-clockwise, reading upwards from (x, y).
    fn text_up(&mut self, size: f32, x: f32, y: f32, s: &str) {
        self.page
            .begin_text()
            .set_font(MONO, size)
            .set_text_matrix([0.0, 1.0, -1.0, 0.0, x, y])
            .show(Str(&win_ansi(s)))
            .end_text();
    }

    fn heading(&mut self, s: &str, size: f32) {
        self.room(size * 2.5 + 40.0);
        self.y -= size * 1.6;
        self.text(BOLD, size, MARGIN, self.y, s);
        self.y -= size * 0.6;
    }

    /// Prose wrapped to the page width.
    fn para(&mut self, font: Name, size: f32, s: &str) {
        let em = if font == MONO { MONO_EM } else { SANS_EM };
        let per_line = ((INNER / (size * em)) as usize).max(10);
        for line in wrap(s, per_line) {
            self.room(size * 1.35);
            self.y -= size * 1.35;
            self.text(font, size, MARGIN, self.y, &line);
        }
    }

    fn gap(&mut self, h: f32) {
        self.y -= h;
    }

    fn fill(&mut self, rgb: (f32, f32, f32), x: f32, y: f32, w: f32, h: f32) {
        self.page
            .save_state()
            .set_fill_rgb(rgb.0, rgb.1, rgb.2)
            .rect(x, y, w, h)
            .fill_nonzero()
            .restore_state();
    }

    fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32) {
        self.page
            .save_state()
            .set_stroke_rgb(0.6, 0.6, 0.6)
            .set_line_width(0.5)
            .move_to(x0, y0)
            .line_to(x1, y1)
            .stroke()
            .restore_state();
    }

    fn finish(mut self) -> Vec<u8> {
        self.done.push(self.page);
        let total = self.done.len();
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let fonts = [Ref::new(3), Ref::new(4), Ref::new(5)];
        let info = Ref::new(6);
        let first_page = 7;
        let page_ids: Vec<Ref> = (0..total)
            .map(|i| Ref::new(first_page + 2 * i as i32))
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(total as i32);
        pdf.document_info(info)
            .title(TextStr(&self.title))
            .creator(TextStr("Bletchley"));
        for (font, base) in fonts
            .iter()
            .zip([&b"Helvetica"[..], b"Helvetica-Bold", b"Courier"])
        {
            pdf.type1_font(*font)
                .base_font(Name(base))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        for (n, mut content) in self.done.into_iter().enumerate() {
            let footer = format!("{}  -  page {} of {total}", self.title, n + 1);
            content
                .begin_text()
                .set_font(SANS, 7.0)
                .next_line(MARGIN, MARGIN - 10.0)
                .show(Str(&win_ansi(&footer)))
                .end_text();
            let id = page_ids[n];
            let content_id = Ref::new(id.get() + 1);
            let mut page = pdf.page(id);
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT))
                .parent(tree)
                .contents(content_id);
            let mut res = page.resources();
            let mut f = res.fonts();
            f.pair(SANS, fonts[0]);
            f.pair(BOLD, fonts[1]);
            f.pair(MONO, fonts[2]);
            f.finish();
            res.finish();
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

/// Renders the report. `title` goes on every page (the period and the platform).
pub fn render(report: &Report, title: &str) -> Vec<u8> {
    let mut p = Pages::new(title.to_owned());
    p.heading(title, 16.0);
    p.para(
        SANS,
        9.0,
        &format!(
            "Period {} to {} inclusive (UTC days). Compiled {} from {} audit entries, {} of them in the period, opened with the oversight key.",
            date(report.period.from_ms),
            date(report.period.to_ms - 1),
            date(report.compiled_ms),
            report.log_entries,
            report.period_entries
        ),
    );
    p.gap(4.0);
    p.para(
        SANS,
        9.0,
        "Every figure names the audit entries it was counted from (their sequence numbers, at its end) and carries the inclusion proof of a sample of them (the first, middle and last), against the checkpoint printed in the appendix, so that each can be checked against the witnessed log: `bletchley audit verify --witness KEY` checks the log and its cosignatures, and each proof leads from its entry's leaf hash to that checkpoint's root.",
    );
    if let Some(why) = &report.proofs_missing {
        p.gap(4.0);
        p.para(SANS, 9.0, &format!("No proofs: {why}"));
    }
    p.gap(6.0);
    for (n, f) in report.figures.iter().enumerate() {
        figure(&mut p, n + 1, f);
    }
    appendix(&mut p, report);
    p.finish()
}

fn figure(p: &mut Pages, n: usize, f: &Figure) {
    // A chart is not split from its caption.
    match &f.body {
        Body::Weekly { .. } => p.room(230.0),
        Body::Heat { .. } => p.room(170.0),
        Body::Table { .. } => {}
    }
    p.heading(&format!("Figure {n}. {}", f.title), 12.0);
    p.para(SANS, 8.0, &format!("Counts {}.", f.counts));
    p.gap(4.0);
    match &f.body {
        Body::Table { headers, rows } => table(p, headers, rows),
        Body::Weekly { weeks } => bars(p, weeks),
        Body::Heat {
            rows,
            columns,
            cells,
        } => heat(p, rows, columns, cells),
    }
    p.gap(4.0);
    let source = if f.seqs.is_empty() {
        "Source entries: none in the period.".to_owned()
    } else {
        format!(
            "Source entries ({}): {}. Proved: {}.",
            f.seqs.len(),
            ranges(&f.seqs),
            f.sample
                .iter()
                .map(|s| format!("#{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    p.para(MONO, 6.5, &source);
    p.gap(8.0);
}

fn table(p: &mut Pages, headers: &[&str], rows: &[Row]) {
    const SIZE: f32 = 7.5;
    let char_w = SIZE * MONO_EM;
    let cols = headers.len();
    let per_line = (INNER / char_w) as usize;
    // The count column is narrow; the others share the rest by their widest cell.
    let count_w = 8;
    let widest: Vec<usize> = (0..cols - 1)
        .map(|c| {
            rows.iter()
                .take(MAX_ROWS)
                .map(|r| r.cells.get(c).map_or(0, |s| s.chars().count()))
                .chain([headers[c].len()])
                .max()
                .unwrap_or(1)
                .max(1)
        })
        .collect();
    let room = per_line.saturating_sub(count_w + cols);
    let sum: usize = widest.iter().sum();
    let widths: Vec<usize> = widest
        .iter()
        .map(|w| {
            if sum <= room {
                *w
            } else {
                (w * room / sum).max(6)
            }
        })
        .collect();
    let line = |cells: Vec<&str>, count: &str| {
        let mut s = String::new();
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&fit(c, *w));
            s.push(' ');
        }
        s.push_str(&format!("{count:>count_w$}"));
        s
    };
    if rows.is_empty() {
        p.para(SANS, 8.0, "None in the period.");
        return;
    }
    p.room(SIZE * 3.0);
    p.y -= SIZE * 1.4;
    let head = line(headers[..cols - 1].to_vec(), headers[cols - 1]);
    p.text(MONO, SIZE, MARGIN, p.y, &head);
    p.line(MARGIN, p.y - 2.5, WIDTH - MARGIN, p.y - 2.5);
    for (i, r) in rows.iter().take(MAX_ROWS).enumerate() {
        p.room(SIZE * 1.35);
        p.y -= SIZE * 1.35;
        if i % 2 == 1 {
            p.fill((0.94, 0.95, 0.97), MARGIN, p.y - 2.0, INNER, SIZE * 1.35);
        }
        let s = line(
            r.cells.iter().map(String::as_str).collect(),
            &r.count.to_string(),
        );
        p.text(MONO, SIZE, MARGIN, p.y, &s);
    }
    if rows.len() > MAX_ROWS {
        let more: u64 = rows[MAX_ROWS..].iter().map(|r| r.count).sum();
        p.para(
            SANS,
            8.0,
            &format!(
                "... and {} more rows ({more} entries), in the report's JSON.",
                rows.len() - MAX_ROWS
            ),
        );
    }
    let total: u64 = rows.iter().map(|r| r.count).sum();
    p.para(
        MONO,
        SIZE,
        &format!("{:>per_line$}", format!("total {total}")),
    );
}

fn bars(p: &mut Pages, weeks: &[Row]) {
    const H: f32 = 140.0;
    let max = weeks.iter().map(|w| w.count).max().unwrap_or(0).max(1);
    p.room(H + 40.0);
    let base = p.y - H - 10.0;
    let left = MARGIN + 30.0;
    let width = INNER - 30.0;
    p.line(left, base, left + width, base);
    p.line(left, base, left, base + H);
    p.text(MONO, 6.5, MARGIN, base + H - 3.0, &max.to_string());
    p.text(MONO, 6.5, MARGIN, base - 2.0, "0");
    let n = weeks.len().max(1) as f32;
    let slot = width / n;
    // A label (ten characters of 6 pt Courier) every so many bars, so none overlap.
    let every = ((10.0 * 6.0 * MONO_EM + 6.0) / slot).ceil().max(1.0) as usize;
    for (i, w) in weeks.iter().enumerate() {
        let h = H * w.count as f32 / max as f32;
        let x = left + slot * i as f32 + slot * 0.15;
        if w.count > 0 {
            p.fill((0.16, 0.35, 0.62), x, base, slot * 0.7, h.max(0.5));
            if slot > 14.0 {
                p.text(MONO, 6.0, x, base + h + 2.0, &w.count.to_string());
            }
        }
        if i % every == 0 {
            let label = w.cells.first().map_or("", String::as_str);
            p.text(MONO, 6.0, x, base - 9.0, label);
        }
    }
    p.y = base - 16.0;
}

fn heat(p: &mut Pages, rows: &[String], columns: &[String], cells: &[Vec<u64>]) {
    if rows.is_empty() {
        p.para(SANS, 8.0, "None in the period.");
        return;
    }
    const LABEL_W: f32 = 110.0;
    const HEAD_H: f32 = 90.0;
    let max = cells.iter().flatten().copied().max().unwrap_or(0).max(1);
    let cell_w = ((INNER - LABEL_W) / columns.len().max(1) as f32).min(40.0);
    let cell_h = 12.0;
    p.room(HEAD_H + cell_h * 3.0);
    let top = p.y - HEAD_H;
    for (c, name) in columns.iter().enumerate() {
        let x = MARGIN + LABEL_W + cell_w * c as f32 + cell_w / 2.0 + 2.0;
        p.text_up(6.5, x, top + 4.0, &fit(name, 26));
    }
    p.y = top;
    for (r, name) in rows.iter().enumerate() {
        if p.y - cell_h < BOTTOM {
            p.turn();
        }
        p.y -= cell_h;
        p.text(MONO, 6.5, MARGIN, p.y + 3.5, &fit(name, 26));
        for (c, &v) in cells[r].iter().enumerate() {
            let x = MARGIN + LABEL_W + cell_w * c as f32;
            let t = v as f32 / max as f32;
            let shade = if v == 0 {
                (0.97, 0.97, 0.97)
            } else {
                (1.0 - 0.8 * t, 1.0 - 0.55 * t, 1.0 - 0.25 * t)
            };
            p.fill(shade, x + 0.5, p.y + 0.5, cell_w - 1.0, cell_h - 1.0);
            if v > 0 {
                let s = v.to_string();
                let dark = t > 0.55;
                if dark {
                    p.page.save_state().set_fill_rgb(1.0, 1.0, 1.0);
                }
                p.text(MONO, 6.0, x + 2.0, p.y + 3.5, &s);
                if dark {
                    p.page.restore_state();
                }
            }
        }
    }
    p.gap(4.0);
    p.para(
        SANS,
        7.0,
        &format!("Darker is more; the darkest cell is {max} accesses."),
    );
}

fn appendix(p: &mut Pages, report: &Report) {
    p.turn();
    p.heading("Appendix: inclusion proofs of the samples", 12.0);
    if report.proofs.is_empty() {
        p.para(
            SANS,
            9.0,
            report
                .proofs_missing
                .as_deref()
                .unwrap_or("No figure has entries in the period, so there is nothing to prove."),
        );
        return;
    }
    p.para(
        SANS,
        8.0,
        "Each proof leads to the checkpoint printed above it: the newest one the witnesses cosigned that covers the entry (their cosignature lines follow the platform's signatures), or, for entries made after the last cosigning, the newest one the platform signed. The leaf is the stored entry line; its hash is SHA-256(0x00 || leaf); the audit path is RFC 9162's, leaf to root.",
    );
    let mut shown: Option<&str> = None;
    for proof in &report.proofs {
        if shown != Some(proof.checkpoint.as_str()) {
            p.gap(6.0);
            p.room(60.0);
            p.para(
                BOLD,
                8.0,
                &format!("Checkpoint of {} entries", proof.tree_size),
            );
            // Small enough that a signature line (about 130 characters) is not broken.
            for line in proof.checkpoint.lines() {
                p.para(MONO, 6.0, if line.is_empty() { " " } else { line });
            }
            shown = Some(proof.checkpoint.as_str());
        }
        p.gap(3.0);
        // A proof is kept on one page.
        p.room(8.0 * 1.35 + (proof.proof.len() + 1) as f32 * 6.5 * 1.35);
        p.para(
            BOLD,
            8.0,
            &format!("Entry #{} (tree size {})", proof.index, proof.tree_size),
        );
        p.para(MONO, 6.5, &format!("leaf hash  {}", proof.leaf_hash));
        for (i, h) in proof.proof.iter().enumerate() {
            p.para(MONO, 6.5, &format!("path {i:>2}    {h}"));
        }
    }
}

/// Text as WinAnsi bytes: Latin-1 as is, a few typographic marks mapped, anything
/// else shown as `?` (the standard fonts carry no other glyphs).
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{2026}' => 0x85,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201C}' => 0x93,
            '\u{201D}' => 0x94,
            '\u{20AC}' => 0x80,
            c if (' '..='~').contains(&c) || ('\u{A0}'..='\u{FF}').contains(&c) => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// `s` cut to `w` characters (marked with an ellipsis) or padded to them.
fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('\u{2026}');
        t
    }
}

/// Words into lines of at most `width` characters; a longer word is cut.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_width_and_cuts_long_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert!(wrap("", 5).is_empty());
    }

    #[test]
    fn fits_and_marks_cuts() {
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit("abcdef", 4), "abc\u{2026}");
    }

    #[test]
    fn encodes_win_ansi() {
        assert_eq!(
            win_ansi("a\u{e9}\u{2026}\u{416}"),
            vec![b'a', 0xE9, 0x85, b'?']
        );
    }
}
