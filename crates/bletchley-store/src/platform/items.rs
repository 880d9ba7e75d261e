//! Storing items: ingest, derived items (rule 4: in the source's collection, at its marking), sealing, placing, auditing and cataloguing them.

use super::*;

impl Platform {
    /// Ingests a batch of items into one collection. Every item is sealed,
    /// placed by residency, audited and cataloged; when this returns `Ok`,
    /// all of them are acknowledged (rule 6). On `Err` none is.
    pub fn ingest(
        &mut self,
        principal: &str,
        opts: &IngestOptions,
        items: Vec<NewItem>,
    ) -> Result<Vec<String>> {
        let actor = Actor::Principal(principal.to_owned());
        let just = opts.justification.as_deref();
        let targets = vec![opts.collection.clone()];
        if opts.retain_until_ms.is_some_and(|t| t <= now_ms()) {
            return Err(Error::Invalid(
                "the retention date is in the past: the item would be destroyed as soon as it was stored".into(),
            ));
        }
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.ingest", targets, just, e)),
        };
        let p = gate.principal().clone();
        if !p.may_ingest() {
            let e = Error::RoleRequired {
                principal: p.name.clone(),
                role: "analyst or field",
                act: "ingest",
            };
            return Err(self.refuse(&actor, "item.ingest", targets, just, e));
        }
        let coll = self.collection_by_name(&opts.collection)?;
        let Some(coll) = coll.filter(|c| c.agency == p.agency) else {
            let e = Error::NotFoundOrNotPermitted {
                reason: Some(Denial::NeedToKnow),
            };
            return Err(self.refuse(&actor, "item.ingest", targets, just, e));
        };
        if let Err(d) = gate.check_marking(&opts.marking) {
            let e = Error::Invalid(format!(
                "you may not ingest at marking {} because you could not read it yourself",
                opts.marking
            ));
            return Err(self.refuse(
                &actor,
                "item.ingest",
                targets,
                just,
                match e {
                    Error::Invalid(m) => Error::Invalid(format!("{m} ({d})")),
                    other => other,
                },
            ));
        }
        self.store_items(&actor, &coll, opts, items, &[], None)
    }

    /// Stores items derived from `source` (attachments, archive members,
    /// transcripts): in its collection, at its marking (rule 4: the
    /// high-water mark of a single input is its own), with its authority and
    /// retention, linked to it so that shredding the source shreds them too.
    /// A principal acting must be able to read the source.
    pub fn derive(
        &mut self,
        actor: &Actor,
        source: &str,
        derivation: &str,
        items: Vec<NewItem>,
    ) -> Result<Vec<String>> {
        let mut ids = self.derive_many(actor, derivation, vec![(source.to_owned(), items)])?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// As [`Platform::derive`] for several sources at once: the parts of
    /// every source that shares a collection, marking, authority, retention
    /// and precedence (those of one ingest do) are stored in one commit, as
    /// an ingest stores its batch, rather than one commit and one durable
    /// audit append per source. Returns each source's ids, in order. Every
    /// source is checked first: if any is refused, nothing is stored.
    pub fn derive_many(
        &mut self,
        actor: &Actor,
        derivation: &str,
        sources: Vec<(String, Vec<NewItem>)>,
    ) -> Result<Vec<Vec<String>>> {
        if derivation.is_empty() || derivation.len() > 40 {
            return Err(Error::Invalid(
                "a derivation is named in 1 to 40 characters".into(),
            ));
        }
        let gate = match actor {
            Actor::Principal(name) => match self.gate(name) {
                Ok(g) => Some(g),
                Err(e) => {
                    let targets = sources.iter().map(|(s, _)| s.clone()).collect();
                    return Err(self.refuse(actor, "item.derive", targets, None, e));
                }
            },
            _ => None,
        };
        let collections = self.collections()?;
        // Checked and resolved, all before anything is stored.
        let mut groups: Vec<DeriveGroup> = Vec::new();
        let mut counts = Vec::with_capacity(sources.len());
        for (n, (source, items)) in sources.into_iter().enumerate() {
            let targets = vec![source.clone()];
            let Some(row) = self.catalog.item(&source)? else {
                let e = Error::NotFoundOrNotPermitted { reason: None };
                return Err(self.refuse(actor, "item.derive", targets, None, e));
            };
            let (meta, marking) = self.open_meta(&row)?;
            if let Some(gate) = &gate
                && let Err(d) = gate.decide(&marking, CollectionId(row.collection_id))
            {
                let e = Error::NotFoundOrNotPermitted { reason: Some(d) };
                return Err(self.refuse(actor, "item.derive", targets, None, e));
            }
            let Some(coll) = collections
                .iter()
                .find(|c| c.id.0 == row.collection_id)
                .cloned()
            else {
                return Err(Error::Layout(format!(
                    "item {source} is in an unknown collection"
                )));
            };
            let tag = self.lineage_tag(&coll.agency, &source)?;
            let opts = IngestOptions {
                collection: meta.collection.clone(),
                marking,
                authority: meta.authority.clone(),
                retain_until_ms: meta.retain_until_ms,
                justification: None,
                priority: meta.priority,
            };
            let from = Lineage {
                source,
                derivation: derivation.to_owned(),
                tag,
                generation: meta.generation.saturating_add(1),
            };
            counts.push(items.len());
            let at = match groups
                .iter()
                .position(|g| g.coll.id == coll.id && g.opts == opts)
            {
                Some(at) => at,
                None => {
                    groups.push(DeriveGroup {
                        coll,
                        opts,
                        items: Vec::new(),
                        lineages: Vec::new(),
                        sources: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            let g = &mut groups[at];
            g.lineages.extend(std::iter::repeat_n(from, items.len()));
            g.sources.extend(std::iter::repeat_n(n, items.len()));
            g.items.extend(items);
        }
        let mut out: Vec<Vec<String>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
        for g in groups {
            let ids = self.store_items(actor, &g.coll, &g.opts, g.items, &g.lineages, None)?;
            for (id, n) in ids.into_iter().zip(g.sources) {
                if let Some(o) = out.get_mut(n) {
                    o.push(id);
                }
            }
        }
        Ok(out)
    }

    /// The keyed tag that links derived items to `source`.
    pub(super) fn lineage_tag(&mut self, agency: &str, source: &str) -> Result<Vec<u8>> {
        self.agency_keys(agency)?;
        let keys = self.agencies.get(agency).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: agency.to_owned(),
        })?;
        Ok(keyed_tag(&keys.dedup, "lineage", source.as_bytes()).to_vec())
    }

    /// Seals, places, audits and catalogs items whose checks are done.
    /// `replica`: the one item is a copy received from another site and keeps
    /// that site's id, time and author.
    pub(super) fn store_items(
        &mut self,
        actor: &Actor,
        coll: &Collection,
        opts: &IngestOptions,
        items: Vec<NewItem>,
        from: &[Lineage],
        replica: Option<&ItemMeta>,
    ) -> Result<Vec<String>> {
        if !from.is_empty() && from.len() != items.len() {
            return Err(Error::Invalid(format!(
                "{} items given with {} lineages",
                items.len(),
                from.len()
            )));
        }
        let action = if replica.is_some() {
            "sync.receive"
        } else if !from.is_empty() {
            "item.derive"
        } else {
            "item.ingest"
        };
        let just = opts.justification.as_deref();
        let targets = vec![opts.collection.clone()];
        let actor_name = actor.name();
        // Residency: the first writable location every applicable rule allows.
        let rules = self.allowed_rules(
            &coll.agency,
            coll.id,
            opts.marking.classification().as_str(),
        )?;
        let rule_refs: Vec<&[Jurisdiction]> = rules.iter().map(|r| r.as_slice()).collect();
        let locations = self.locations()?;
        let allowed_locs: Vec<&Location> = locations
            .iter()
            .filter(|l| residency::allowed(&l.jurisdiction, &rule_refs))
            .collect();
        let Some(target) = allowed_locs.iter().find(|l| !l.retired).copied() else {
            let allowed = rules
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|j| j.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>()
                .join(" and ");
            let e = Error::Residency { allowed };
            return Err(self.refuse(actor, action, targets, just, e));
        };
        let target = target.clone();
        let allowed_ids: BTreeSet<i64> = allowed_locs.iter().map(|l| l.id).collect();
        let store = target.open()?;
        self.agency_keys(&coll.agency)?;
        let keys = self
            .agencies
            .get(&coll.agency)
            .ok_or_else(|| Error::Unknown {
                kind: "agency",
                name: coll.agency.clone(),
            })?;
        let now = now_ms();
        let mut rows = Vec::with_capacity(items.len());
        let mut batch_objects: HashMap<Vec<u8>, ContentRow> = HashMap::new();
        let mut written = Vec::new();
        let mut pending = Vec::new();
        let mut packs = Packer::default();
        let mut fed = Vec::new();
        for (n, it) in items.into_iter().enumerate() {
            let from = from.get(n);
            let tag = keyed_tag(&keys.dedup, "content", &it.content).to_vec();
            let existing = self
                .catalog
                .find_content(keys.id, &tag)?
                .into_iter()
                .find(|c| {
                    allowed_ids.contains(&c.location_id)
                        && locations
                            .iter()
                            .any(|l| l.id == c.location_id && !l.retired)
                });
            let (content, object) = if let Some(c) = existing {
                (ContentRef::Existing(c.id), c.object)
            } else if let Some(c) = batch_objects.get(&tag) {
                (ContentRef::New(c.clone()), c.object.clone())
            } else {
                let packs_it = it.content.len() <= PACKED_CONTENT_MAX;
                let object = if packs_it {
                    packs.next_name(it.content.len())?
                } else {
                    object_name()?
                };
                let cdek = DataKey::generate()?;
                let sealed = stream::seal(&cdek, object.as_bytes(), &it.content)?;
                let size = sealed.len() as i64;
                let packed = if packs_it {
                    Some(packs.add(sealed)?)
                } else {
                    pending.push((object.clone(), sealed));
                    written.push(object.clone());
                    None
                };
                let w = keys.provider.wrap(&cdek, &wrap_aad("contents", &object))?;
                let c = ContentRow {
                    id: 0,
                    agency_id: keys.id,
                    tag: tag.clone(),
                    location_id: target.id,
                    object,
                    packed,
                    wrapped_key: w.bytes,
                    kek_version: w.kek_version,
                    size,
                };
                batch_objects.insert(tag, c.clone());
                let object = c.object.clone();
                (ContentRef::New(c), object)
            };
            let binding = ContentBinding {
                agency: coll.agency.clone(),
                object,
                length: it.content.len() as u64,
                sha256: hex::encode(bletchley_crypto::sha256(&it.content)),
            };
            let id = replica.map_or_else(|| uuid::Uuid::now_v7().to_string(), |r| r.id.clone());
            let meta = ItemMeta {
                id: id.clone(),
                title: it.title,
                marking: opts.marking.render(),
                collection: opts.collection.clone(),
                authority: opts.authority.clone(),
                size: it.content.len() as u64,
                created_ms: replica.map_or(now, |r| r.created_ms),
                retain_until_ms: opts.retain_until_ms,
                ingested_by: replica.map_or_else(|| actor_name.clone(), |r| r.ingested_by.clone()),
                derived_from: from.map(|f| f.source.clone()),
                derivation: from.map(|f| f.derivation.clone()),
                generation: from.map_or(0, |f| f.generation),
                priority: opts.priority,
                // Counted per node: a copy starts its own count here.
                remarked: 0,
            };
            let idek = DataKey::generate()?;
            let w = keys.provider.wrap(&idek, &wrap_aad("items", &id))?;
            let sealed = SealedMeta {
                meta,
                content: binding,
            };
            let json = serde_json::to_vec(&sealed).map_err(|e| Error::Invalid(e.to_string()))?;
            let sealed_meta = record::seal(&idek, &meta_aad(keys.id, &id, coll.id), &json)?;
            if self.feed.is_some() {
                fed.push(IndexFeedItem {
                    meta: sealed.meta,
                    marking: opts.marking.clone(),
                    collection: coll.id,
                    content: it.content,
                });
            }
            rows.push((
                ItemRow {
                    id,
                    agency_id: keys.id,
                    collection_id: coll.id.0,
                    content_id: 0,
                    created_ms: now,
                    retain_until_ms: opts.retain_until_ms,
                    wrapped_key: w.bytes,
                    kek_version: w.kek_version,
                    sealed_meta,
                    lineage: from.map(|f| f.tag.clone()),
                },
                content,
            ));
        }
        let entries: Vec<Entry> = rows
            .iter()
            .enumerate()
            .map(|(n, (r, _))| Entry {
                time_ms: now,
                principal: actor_name.clone(),
                action: action.into(),
                targets: [
                    vec![
                        r.id.clone(),
                        opts.collection.clone(),
                        format!("location {}", target.name),
                    ],
                    from.get(n)
                        .map(|f| vec![format!("derived from {} ({})", f.source, f.derivation)])
                        .unwrap_or_default(),
                ]
                .concat(),
                justification: opts.justification.clone(),
                outcome: Outcome::Allowed,
                reason: None,
                about: Some(bletchley_audit::About {
                    collection: opts.collection.clone(),
                    marking: opts.marking.render(),
                }),
            })
            .collect();
        for (pack, bytes) in packs.finish() {
            written.push(pack.clone());
            pending.push((pack, bytes));
        }
        store.put_many(&self.rt, pending)?;
        // Audit first, then the catalog: an item is visible only once its
        // entry is durable; a crash in between leaves an entry for an item
        // that never appeared, never an unaudited item.
        self.append_audit(&entries)?;
        let step = match self.catalog.commit_items(&rows) {
            Ok(step) => step,
            Err(e) => {
                for o in &written {
                    let _ = store.delete(&self.rt, o);
                }
                let ids = rows.iter().map(|(r, _)| r.id.clone()).collect();
                let _ = self.record(
                    actor.clone(),
                    action,
                    ids,
                    just,
                    Outcome::Failed,
                    Some(format!("catalog commit failed: {e}")),
                );
                return Err(e);
            }
        };
        if let Some(feed) = &mut self.feed {
            feed.stored(fed, step);
        }
        Ok(rows.into_iter().map(|(r, _)| r.id).collect())
    }
}
