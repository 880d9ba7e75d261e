//! A rule set compiled once and run over events.
//!
//! Every case-insensitive literal any rule seeks in a field (`contains`, `startswith`,
//! `endswith` and whole values without inner wildcards, which is nearly all of
//! SigmaHQ) goes into one Aho-Corasick automaton per field name, shared by all rules.
//! A record's field values are each scanned once; the literals found are bits in a
//! per-thread bitset; rules then read bits. Only the rules of the logsources an event
//! belongs to are evaluated, and the few tests that are not literals (regular
//! expressions, CIDR, comparisons, inner wildcards) run directly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::condition::Condition;
use crate::event::{Event, Value};
use crate::mapping::{DispatchCache, Mapping};
use crate::pattern::{Anchor, Test, anchored};
use crate::rule::{self, Body, Correlation, Detection, FieldMatch, LogSource, Rule, RuleError};

/// What loading a rule set found: what loaded and what did not, and why.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Rule files read.
    pub files: usize,
    /// Detection rules compiled.
    pub detection_rules: usize,
    /// Correlation rules compiled.
    pub correlation_rules: usize,
    /// Filter rules applied.
    pub filter_rules: usize,
    /// Files that are not Sigma, each with the file and line.
    pub errors: Vec<RuleError>,
    /// Rules whose logsource the mapping does not know (they cannot fire).
    pub unmapped_logsources: Vec<(PathBuf, String, LogSource)>,
    /// Rules naming a field the logsource's closed field list lacks.
    pub unmapped_fields: Vec<(PathBuf, String, String)>,
    /// Correlations and filters naming rules that are not loaded.
    pub unresolved: Vec<(PathBuf, String, String)>,
}

impl LoadReport {
    /// One line per problem, for the operator.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        for (f, id, ls) in &self.unmapped_logsources {
            out.push(format!(
                "{}: rule {id}: logsource {ls} has no entry in the mapping",
                f.display()
            ));
        }
        for (f, id, field) in &self.unmapped_fields {
            out.push(format!(
                "{}: rule {id}: field {field:?} is not in its logsource's mapping",
                f.display()
            ));
        }
        for (f, id, what) in &self.unresolved {
            out.push(format!(
                "{}: rule {id}: names rule {what:?}, which is not loaded",
                f.display()
            ));
        }
        out
    }
}

/// One compiled test of a field value.
#[derive(Debug, Clone)]
enum CTest {
    /// A literal found (or not) by the field's automaton.
    Lit(u32),
    /// Anything else, run on the values.
    Direct(Test),
}

#[derive(Debug, Clone)]
struct CField {
    field: Option<String>,
    /// The field's interned id, where it has a name.
    fid: Option<u32>,
    values: Vec<Vec<CTest>>,
    all: bool,
}

#[derive(Debug, Clone)]
struct CDetection {
    searches: Vec<Vec<Vec<CField>>>,
    condition: Condition,
}

#[derive(Debug)]
struct CRule {
    rule: Arc<Rule>,
    logsource: usize,
    detection: CDetection,
    filters: Vec<CDetection>,
}

/// A field's automaton and what each of its patterns means.
#[derive(Debug)]
struct FieldLits {
    ac: AhoCorasick,
    /// Per pattern: the literal id for each anchor, where some rule uses it.
    ids: Vec<[Option<u32>; 4]>,
}

fn anchor_slot(a: Anchor) -> usize {
    match a {
        Anchor::Exact => 0,
        Anchor::Contains => 1,
        Anchor::StartsWith => 2,
        Anchor::EndsWith => 3,
    }
}

/// One field's literals while compiling: the needles, their positions, and per needle
/// the literal id for each anchor.
type FieldNeedles = (Vec<String>, HashMap<String, usize>, Vec<[Option<u32>; 4]>);

#[derive(Default)]
struct LitBuilder {
    by_field: BTreeMap<u32, FieldNeedles>,
    fields: HashMap<String, u32>,
    next: u32,
}

impl LitBuilder {
    /// The interned id of a field name (names are compared without case).
    fn field(&mut self, name: &str) -> u32 {
        let n = self.fields.len() as u32;
        *self.fields.entry(name.to_lowercase()).or_insert(n)
    }

    fn add(&mut self, field: &str, needle: &str, anchor: Anchor) -> u32 {
        let fid = self.field(field);
        let (needles, index, ids) = self.by_field.entry(fid).or_default();
        let p = *index.entry(needle.to_owned()).or_insert_with(|| {
            needles.push(needle.to_owned());
            ids.push([None; 4]);
            needles.len() - 1
        });
        let slot = &mut ids[p][anchor_slot(anchor)];
        if let Some(id) = slot {
            return *id;
        }
        let id = self.next;
        self.next += 1;
        *slot = Some(id);
        id
    }
}

/// Per-thread working memory for [`Engine::detect`].
#[derive(Debug, Default)]
pub struct Scratch {
    hits: Vec<u64>,
    touched: Vec<u32>,
    dispatch: DispatchCache,
    /// Per interned field: 1 + its position in the event, or 0 where absent.
    slots: Vec<u32>,
    filled: Vec<u32>,
    /// Per rule: the event number it was last made a candidate for.
    stamp: Vec<u32>,
    generation: u32,
    in_logsource: Vec<bool>,
    candidates: Vec<usize>,
}

impl Scratch {
    fn set(&mut self, id: u32) {
        let (w, b) = ((id / 64) as usize, id % 64);
        if self.hits[w] & (1 << b) == 0 {
            self.hits[w] |= 1 << b;
            self.touched.push(id);
        }
    }

    fn get(&self, id: u32) -> bool {
        self.hits[(id / 64) as usize] & (1 << (id % 64)) != 0
    }

    fn clear(&mut self) {
        for id in self.touched.drain(..) {
            self.hits[(id / 64) as usize] = 0;
        }
        for f in self.filled.drain(..) {
            self.slots[f as usize] = 0;
        }
    }

    fn values<'e>(&self, fid: u32, e: &'e Event) -> Option<&'e [Value]> {
        match self.slots[fid as usize] {
            0 => None,
            i => Some(e.values_at(i as usize - 1)),
        }
    }
}

/// A compiled rule set.
#[derive(Debug)]
pub struct Engine {
    mapping: Mapping,
    dispatch_fields: Vec<String>,
    rules: Vec<CRule>,
    /// Per logsource: the rules that have no literal every match needs, so are tried on
    /// every event of the logsource.
    always: Vec<Vec<usize>>,
    /// Per literal: the rules that can only match when it is found.
    watchers: Vec<Vec<usize>>,
    /// Interned field names.
    field_ids: HashMap<String, u32>,
    /// Per interned field: its automaton.
    literals: Vec<Option<FieldLits>>,
    literal_count: u32,
    correlations: Vec<(Arc<Rule>, Correlation, Vec<usize>)>,
    report: LoadReport,
}

impl Engine {
    /// Loads every `.yml`/`.yaml` file under the given files and directories.
    pub fn load(paths: &[PathBuf], mapping: Mapping) -> Engine {
        let mut files = Vec::new();
        for p in paths {
            collect_rule_files(p, &mut files);
        }
        files.sort();
        let mut report = LoadReport::default();
        let mut rules = Vec::new();
        // Reading and parsing YAML is most of a load; files are independent.
        let parsed: Vec<Result<Vec<Rule>, RuleError>> = {
            use rayon::prelude::*;
            files
                .par_iter()
                .map(|f| {
                    let bytes = std::fs::read(f).map_err(|e| RuleError {
                        file: f.clone(),
                        line: 1,
                        message: format!("cannot read: {e}"),
                    })?;
                    let text = String::from_utf8_lossy(&bytes);
                    rule::parse_file(f, &text, &mapping.placeholders)
                })
                .collect()
        };
        report.files = files.len();
        for p in parsed {
            match p {
                Ok(rs) => rules.extend(rs),
                Err(e) => report.errors.push(e),
            }
        }
        Engine::compile(rules, mapping, report)
    }

    /// Compiles parsed rules.
    pub fn compile(rules: Vec<Rule>, mapping: Mapping, mut report: LoadReport) -> Engine {
        let mut lits = LitBuilder::default();
        let mut compiled: Vec<CRule> = Vec::new();

        let mut filters = Vec::new();
        let mut correlations = Vec::new();
        for r in rules {
            let r = Arc::new(r);
            match &r.body {
                Body::Detection(d) => {
                    let Some((ls, entry)) = mapping.logsource(&r.logsource) else {
                        report.unmapped_logsources.push((
                            r.file.clone(),
                            r.id.clone(),
                            r.logsource.clone(),
                        ));
                        continue;
                    };
                    if let Some(known) = &entry.fields {
                        for f in detection_fields(d) {
                            const COMMON: [&str; 5] = [
                                "EventID",
                                "Channel",
                                "Provider_Name",
                                "Computer",
                                "Provider",
                            ];
                            let ok = known
                                .iter()
                                .map(String::as_str)
                                .chain(COMMON)
                                .any(|k| k.eq_ignore_ascii_case(&f));
                            if !ok {
                                report
                                    .unmapped_fields
                                    .push((r.file.clone(), r.id.clone(), f));
                            }
                        }
                    }
                    let detection = compile_detection(d, &mut lits);
                    compiled.push(CRule {
                        rule: r.clone(),
                        logsource: ls,
                        detection,
                        filters: Vec::new(),
                    });
                }
                Body::Filter(f) => filters.push((r.clone(), f.clone())),
                Body::Correlation(c) => correlations.push((r.clone(), c.clone())),
            }
        }
        report.detection_rules = compiled.len();
        let find = |compiled: &[CRule], name: &str| -> Option<usize> {
            compiled
                .iter()
                .position(|c| c.rule.id == name || c.rule.name.as_deref() == Some(name))
        };
        for (r, f) in filters {
            let cd = compile_detection(&f.detection, &mut lits);
            let mut applied = false;
            for target in &f.rules {
                match find(&compiled, target) {
                    Some(i) => {
                        compiled[i].filters.push(cd.clone());
                        applied = true;
                    }
                    None => report
                        .unresolved
                        .push((r.file.clone(), r.id.clone(), target.clone())),
                }
            }
            if applied {
                report.filter_rules += 1;
            }
        }
        let mut corr = Vec::new();
        for (r, c) in correlations {
            let mut refs = Vec::new();
            let mut ok = true;
            for target in &c.rules {
                match find(&compiled, target) {
                    Some(i) => refs.push(i),
                    None => {
                        report
                            .unresolved
                            .push((r.file.clone(), r.id.clone(), target.clone()));
                        ok = false;
                    }
                }
            }
            if ok {
                corr.push((r, c, refs));
            }
        }
        report.correlation_rules = corr.len();
        let mut literals: Vec<Option<FieldLits>> = (0..lits.fields.len()).map(|_| None).collect();
        for (fid, (needles, _, ids)) in lits.by_field {
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&needles);
            // Building fails only past the automaton's size limits, far above any
            // rule set's needles; should it, the rules' literals are never found, so
            // say so loudly rather than miss in silence.
            match ac {
                Ok(ac) => literals[fid as usize] = Some(FieldLits { ac, ids }),
                Err(e) => report.errors.push(RuleError {
                    file: PathBuf::from("(rule set)"),
                    line: 0,
                    message: format!("the literals of field #{fid} do not compile: {e}"),
                }),
            }
        }
        // Which rules each literal can wake, and which must always be tried.
        let mut always = vec![Vec::new(); mapping.logsources.len()];
        let mut watchers = vec![Vec::new(); lits.next as usize];
        for (ri, r) in compiled.iter().enumerate() {
            match needed_literals(&r.detection) {
                Some(set) => {
                    for id in set {
                        watchers[id as usize].push(ri);
                    }
                }
                None => always[r.logsource].push(ri),
            }
        }
        let dispatch_fields = mapping.dispatch_fields();
        Engine {
            mapping,
            dispatch_fields,
            rules: compiled,
            always,
            watchers,
            field_ids: lits.fields,
            literals,
            literal_count: lits.next,
            correlations: corr,
            report,
        }
    }

    /// What loading found.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The mapping the rules were compiled against (readers build events with it).
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The detection rule at a position [`Engine::detect`] returned.
    pub fn rule(&self, i: usize) -> &Arc<Rule> {
        &self.rules[i].rule
    }

    /// The number of detection rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether a rule's own detections are left out of what is reported: the
    /// specification has the rules a correlation counts report nothing of their own
    /// unless one of its correlations says `generate: true`.
    pub fn quiet(&self, i: usize) -> bool {
        let mut counted = false;
        for (_, c, refs) in &self.correlations {
            if refs.contains(&i) {
                if c.generate {
                    return false;
                }
                counted = true;
            }
        }
        counted
    }

    /// The correlation rules, with the positions of the detection rules they count.
    pub fn correlations(&self) -> &[(Arc<Rule>, Correlation, Vec<usize>)] {
        &self.correlations
    }

    /// A scratch sized for this engine.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            hits: vec![0; (self.literal_count as usize).div_ceil(64) + 1],
            touched: Vec::new(),
            dispatch: DispatchCache::default(),
            slots: vec![0; self.field_ids.len()],
            filled: Vec::new(),
            stamp: vec![0; self.rules.len()],
            generation: 0,
            in_logsource: vec![false; self.mapping.logsources.len()],
            candidates: Vec::new(),
        }
    }

    /// The positions of the rules that fire on an event, in rule order.
    pub fn detect(&self, e: &Event, scratch: &mut Scratch, out: &mut Vec<usize>) {
        out.clear();
        if scratch.stamp.len() != self.rules.len() || scratch.slots.len() != self.field_ids.len() {
            *scratch = self.scratch();
        }
        let logsources = scratch
            .dispatch
            .logsources(&self.mapping, &self.dispatch_fields, e)
            .to_vec();
        if logsources.is_empty() {
            return;
        }
        // Where each field the rules name sits in this event, and one pass of its
        // automaton over each of its values.
        for (i, (name, values)) in e.fields_lower().enumerate() {
            let Some(&fid) = self.field_ids.get(name) else {
                continue;
            };
            scratch.slots[fid as usize] = i as u32 + 1;
            scratch.filled.push(fid);
            let Some(fl) = &self.literals[fid as usize] else {
                continue;
            };
            for v in values {
                let hay = v.lower.as_str();
                for m in fl.ac.find_overlapping_iter(hay) {
                    let ids = fl.ids[m.pattern().as_usize()];
                    let at_start = m.start() == 0;
                    let at_end = m.end() == hay.len();
                    for (slot, id) in ids.iter().enumerate() {
                        let Some(id) = id else { continue };
                        let hit = match slot {
                            0 => at_start && at_end,
                            1 => true,
                            2 => at_start,
                            _ => at_end,
                        };
                        if hit {
                            scratch.set(*id);
                        }
                    }
                }
            }
        }
        // The candidates: rules that must always be tried, and rules woken by a
        // literal they need, in the event's logsources.
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.iter_mut().for_each(|s| *s = u32::MAX);
            scratch.generation = 1;
        }
        let generation = scratch.generation;
        let mut candidates = std::mem::take(&mut scratch.candidates);
        candidates.clear();
        for &ls in &logsources {
            scratch.in_logsource[ls] = true;
            candidates.extend_from_slice(&self.always[ls]);
        }
        for &id in &scratch.touched {
            for &ri in &self.watchers[id as usize] {
                if scratch.in_logsource[self.rules[ri].logsource] && scratch.stamp[ri] != generation
                {
                    scratch.stamp[ri] = generation;
                    candidates.push(ri);
                }
            }
        }
        for &ls in &logsources {
            scratch.in_logsource[ls] = false;
        }
        for &ri in &candidates {
            let r = &self.rules[ri];
            if eval_detection(&r.detection, e, scratch)
                && r.filters.iter().all(|f| eval_detection(f, e, scratch))
            {
                out.push(ri);
            }
        }
        scratch.candidates = candidates;
        out.sort_unstable();
        out.dedup();
        scratch.clear();
    }

    /// The fields of an event a rule reads, with their values, for printing.
    pub fn matched_fields(&self, i: usize, e: &Event) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Body::Detection(d) = &self.rules[i].rule.body {
            for f in detection_fields(d) {
                if let Some(v) = e.get(&f) {
                    let text: Vec<&str> = v.iter().map(|v| v.text.as_str()).collect();
                    out.push((f, text.join("; ")));
                }
            }
        }
        out
    }
}

fn collect_rule_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for entry in rd.flatten() {
                collect_rule_files(&entry.path(), out);
            }
        }
    } else if p
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml"))
    {
        out.push(p.to_owned());
    }
}

/// Every field name a detection reads, in order, once.
pub fn detection_fields(d: &Detection) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &d.searches {
        for alt in &s.alternatives {
            for fm in alt {
                if let Some(f) = &fm.field
                    && !out.iter().any(|o| o == f)
                {
                    out.push(f.clone());
                }
                for v in &fm.values {
                    for t in v {
                        if let Test::FieldRef { field, .. } = t
                            && !out.iter().any(|o| o == field)
                        {
                            out.push(field.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

fn compile_detection(d: &Detection, lits: &mut LitBuilder) -> CDetection {
    CDetection {
        searches: d
            .searches
            .iter()
            .map(|s| {
                s.alternatives
                    .iter()
                    .map(|alt| alt.iter().map(|fm| compile_field(fm, lits)).collect())
                    .collect()
            })
            .collect(),
        condition: d.condition.clone(),
    }
}

fn compile_field(fm: &FieldMatch, lits: &mut LitBuilder) -> CField {
    let values = fm
        .values
        .iter()
        .map(|alts| {
            alts.iter()
                .map(|t| match (t, &fm.field) {
                    (
                        Test::Literal {
                            needle,
                            anchor,
                            cased: false,
                        },
                        Some(field),
                    ) if !needle.is_empty() => CTest::Lit(lits.add(field, needle, *anchor)),
                    _ => CTest::Direct(t.clone()),
                })
                .collect()
        })
        .collect();
    CField {
        fid: fm.field.as_deref().map(|f| lits.field(f)),
        field: fm.field.clone(),
        values,
        all: fm.all,
    }
}

fn eval_detection(d: &CDetection, e: &Event, scratch: &Scratch) -> bool {
    d.condition.eval(&mut |i| {
        d.searches[i]
            .iter()
            .any(|alt| alt.iter().all(|f| eval_field(f, e, scratch)))
    })
}

fn eval_field(f: &CField, e: &Event, scratch: &Scratch) -> bool {
    let values: Option<&[Value]> = f.fid.and_then(|fid| scratch.values(fid, e));
    let one = |tests: &Vec<CTest>| {
        tests
            .iter()
            .any(|t| eval_test(t, f.field.as_deref(), values, e, scratch))
    };
    if f.values.is_empty() {
        return false;
    }
    if f.all {
        f.values.iter().all(one)
    } else {
        f.values.iter().any(one)
    }
}

fn eval_test(
    t: &CTest,
    field: Option<&str>,
    values: Option<&[Value]>,
    e: &Event,
    scratch: &Scratch,
) -> bool {
    match t {
        CTest::Lit(id) => scratch.get(*id),
        CTest::Direct(test) => match (test, field) {
            (Test::Exists(want), _) => values.is_some() == *want,
            (Test::Null, _) => values.is_none_or(|vs| vs.iter().any(|v| v.null)),
            (
                Test::FieldRef {
                    field: other,
                    anchor,
                    cased,
                },
                _,
            ) => {
                let (Some(vs), Some(os)) = (values, e.get(other)) else {
                    return false;
                };
                vs.iter().any(|v| {
                    os.iter().any(|o| {
                        if *cased {
                            anchored(&v.text, &o.text, *anchor)
                        } else {
                            anchored(&v.lower, &o.lower, *anchor)
                        }
                    })
                })
            }
            (test, Some(_)) => {
                values.is_some_and(|vs| vs.iter().any(|v| !v.null && test.matches_value(v)))
            }
            // A keyword: any value of any field.
            (test, None) => e
                .fields()
                .any(|(_, vs)| vs.iter().any(|v| !v.null && test.matches_value(v))),
        },
    }
}

/// Literals at least one of which is found whenever the detection matches (so a rule is
/// tried only when one is), or `None` when no such set is known (a negation at the
/// top, a regular expression, a keyword).
fn needed_literals(d: &CDetection) -> Option<Vec<u32>> {
    fn field(f: &CField) -> Option<Vec<u32>> {
        // Any one written value must match (or, with `all`, every one: then the first
        // value's literals alone are needed).
        let values: &[Vec<CTest>] = if f.all { f.values.get(..1)? } else { &f.values };
        let mut out = Vec::new();
        for v in values {
            for t in v {
                match t {
                    CTest::Lit(id) => out.push(*id),
                    CTest::Direct(_) => return None,
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }
    fn search(d: &CDetection, i: usize) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for alt in &d.searches[i] {
            // A conjunction needs what its most selective field needs.
            let best = alt.iter().filter_map(field).min_by_key(Vec::len)?;
            out.extend(best);
        }
        (!out.is_empty()).then_some(out)
    }
    fn cond(d: &CDetection, c: &Condition) -> Option<Vec<u32>> {
        match c {
            Condition::Search(i) => search(d, *i),
            Condition::And(parts) => parts.iter().filter_map(|p| cond(d, p)).min_by_key(Vec::len),
            Condition::Or(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(cond(d, p)?);
                }
                Some(out)
            }
            Condition::Not(_) => None,
        }
    }
    let mut set = cond(d, &d.condition)?;
    set.sort_unstable();
    set.dedup();
    Some(set)
}
