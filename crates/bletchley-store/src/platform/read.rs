//! Reading items: the gate, the justification, the binding of metadata to content, and the audit entry, before any byte is returned.

use super::*;

/// A read the gate allowed, its content not yet touched.
struct PreparedRead {
    who: String,
    access: Access,
    row: ItemRow,
    meta: ItemMeta,
    binding: ContentBinding,
}

/// A read the gate allowed, with where its content lies and the key that opens it.
struct PlannedRead {
    access: Access,
    row: ItemRow,
    meta: ItemMeta,
    binding: ContentBinding,
    content: ContentRow,
    cdek: DataKey,
}

/// The error for content whose location the catalog does not list.
pub(super) fn unknown_location(row: &ItemRow) -> Error {
    Error::Layout(format!("content of {} is in an unknown location", row.id))
}

/// Opens an item's sealed content object, and refuses it unless it is the
/// content the item's sealed metadata names: same object, length and digest.
///
/// The one function that decrypts an item's content, and it takes the gate's
/// [`Access`] for that item by value: code that returns content without a
/// gate decision for the very item does not compile.
pub(super) fn open_content(
    access: Access,
    row: &ItemRow,
    c: &ContentRow,
    cdek: &DataKey,
    sealed: &[u8],
    binding: &ContentBinding,
) -> Result<Vec<u8>> {
    if access.item() != row.id {
        return Err(Error::Layout(format!(
            "an access to {} was used to open {}",
            access.item(),
            row.id
        )));
    }
    if c.object != binding.object {
        return Err(Error::Damaged(format!(
            "item {} points at a content that is not its own (re-pointed in the catalog)",
            row.id
        )));
    }
    let plain = stream::open(cdek, c.object.as_bytes(), sealed).map_err(|_| {
        Error::Damaged(format!(
            "the content of item {} does not open (altered, truncated or swapped)",
            row.id
        ))
    })?;
    if plain.len() as u64 != binding.length
        || hex::encode(bletchley_crypto::sha256(&plain)) != binding.sha256
    {
        return Err(Error::Damaged(format!(
            "the content of item {} is not the one it was stored with",
            row.id
        )));
    }
    Ok(plain)
}

/// An item read: its metadata and content.
pub type ItemRead = (ItemMeta, Vec<u8>);

impl Platform {
    /// Opens an item's metadata. Internal: callers must pass the result
    /// through the gate before revealing anything.
    pub(super) fn open_meta(&mut self, row: &ItemRow) -> Result<(ItemMeta, Marking)> {
        let agency = self.agency_name(row.agency_id)?;
        let (meta, marking, _) = self.open_sealed_meta(row, &agency)?;
        Ok((meta, marking))
    }

    /// [`Self::open_meta`] with what it says of the item's content.
    pub(super) fn open_sealed_meta(
        &mut self,
        row: &ItemRow,
        agency: &str,
    ) -> Result<(ItemMeta, Marking, ContentBinding)> {
        let sealed = self.open_sealed(row, agency)?;
        let marking = sealed
            .meta
            .parsed_marking()
            .map_err(|e| Error::Layout(format!("stored marking: {e}")))?;
        Ok((sealed.meta, marking, sealed.content))
    }

    /// Seals `sealed` as item `row`'s metadata again (after a re-marking), under its own
    /// data key and bound to where it sits.
    pub(super) fn reseal(
        &mut self,
        row: &ItemRow,
        agency: &str,
        sealed: &SealedMeta,
    ) -> Result<Vec<u8>> {
        let idek = self.item_key(row, agency)?;
        let json = serde_json::to_vec(sealed).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(record::seal(
            &idek,
            &meta_aad(row.agency_id, &row.id, CollectionId(row.collection_id)),
            &json,
        )?)
    }

    /// Item `row`'s data key, unwrapped by its agency's keys where the row sits.
    pub(super) fn item_key(&mut self, row: &ItemRow, agency: &str) -> Result<DataKey> {
        let agency = agency.to_owned();
        self.agency_keys(&agency)
            .map_err(|e| Error::KeyUnavailable {
                agency: agency.clone(),
                reason: e.to_string(),
            })?;
        let keys = self.agencies.get(&agency).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: agency.clone(),
        })?;
        let idek = keys
            .provider
            .unwrap(
                &WrappedKey {
                    kek_version: row.kek_version,
                    bytes: row.wrapped_key.clone(),
                },
                &wrap_aad("items", &row.id),
            )
            .map_err(|_| {
                Error::Damaged(format!(
                    "item {}'s data key does not unwrap where it sits (altered, or moved to another item or agency)",
                    row.id
                ))
            })?;
        Ok(idek)
    }

    /// Item `row`'s sealed metadata, opened and checked against where it sits: its id,
    /// agency, retention date, link to its source and count of re-markings.
    pub(super) fn open_sealed(&mut self, row: &ItemRow, agency: &str) -> Result<SealedMeta> {
        let agency = agency.to_owned();
        let idek = self.item_key(row, &agency)?;
        let json = record::open(
            &idek,
            &meta_aad(row.agency_id, &row.id, CollectionId(row.collection_id)),
            &row.sealed_meta,
            bletchley_crypto::Context::Record,
        )
        .map_err(|_| {
            Error::Damaged(format!(
                "item {}'s metadata does not open where it sits (altered, or moved to another collection)",
                row.id
            ))
        })?;
        let sealed: SealedMeta = serde_json::from_slice(&json)
            .map_err(|e| Error::Layout(format!("item metadata: {e}")))?;
        if sealed.meta.id != row.id
            || sealed.content.agency != agency
            || sealed.meta.retain_until_ms != row.retain_until_ms
        {
            return Err(Error::Damaged(format!(
                "item {}'s metadata belongs to another item or agency",
                row.id
            )));
        }
        // A re-marked item's sealed metadata must be the newest: an earlier copy opens
        // with the same key, so the guarded count of its re-markings decides.
        let remarked = self.remark_count(&row.id)?;
        if sealed.meta.remarked != remarked {
            return Err(Error::Damaged(format!(
                "item {}'s metadata is from before its re-marking {remarked} (put back from an earlier copy)",
                row.id
            )));
        }
        // The catalog's link to the source decides what a shred takes with it (rule 4): it
        // must be the one the sealed metadata names.
        let lineage = match &sealed.meta.derived_from {
            Some(source) => Some(self.lineage_tag(&agency, source)?),
            None => None,
        };
        if row.lineage != lineage {
            return Err(Error::Damaged(format!(
                "item {}'s link to the item it was derived from was altered (a shred of its source would leave it behind)",
                row.id
            )));
        }
        Ok(sealed)
    }

    /// The gate and the collections a read of item `id` by `actor` is decided on; a principal
    /// who cannot be gated (unknown, disabled, key locked) is refused and recorded as `action`.
    fn reader_gate(
        &mut self,
        actor: &Actor,
        action: &str,
        id: &str,
        justification: Option<&str>,
    ) -> Result<(Gate, Vec<Collection>)> {
        let Actor::Principal(principal) = actor else {
            return Err(Error::Invalid("only a principal reads items".into()));
        };
        match self
            .gate(principal)
            .and_then(|g| Ok((g, self.collections()?)))
        {
            Ok(g) => Ok(g),
            Err(e) => Err(self.refuse(actor, action, vec![id.to_owned()], justification, e)),
        }
    }

    /// Reads an item: gate, justification for bulk collections, audit entry,
    /// then the content.
    pub fn get(
        &mut self,
        principal: &str,
        id: &str,
        justification: Option<&str>,
    ) -> Result<(ItemMeta, Vec<u8>)> {
        let actor = Actor::Principal(principal.to_owned());
        let (gate, collections) = self.reader_gate(&actor, "item.get", id, justification)?;
        let read = self.get_unrecorded(&gate, &collections, id, justification)?;
        self.append_audit(&[read_entry(principal, &read.0, now_ms(), justification)])?;
        Ok(read)
    }

    /// The newest job of `kind` on an item the principal may read, with what it has made so
    /// far while it has not finished (see [`Self::save_job_partial`]): how an analyst reads the
    /// first minutes of a long recording's transcript while the rest is transcribed. Gated as a
    /// read of the item, since the partial output is its content, and audited as
    /// `item.partial`.
    pub fn job_on_item(
        &mut self,
        principal: &str,
        id: &str,
        kind: &str,
        justification: Option<&str>,
    ) -> Result<crate::jobs::JobOnItem> {
        let actor = Actor::Principal(principal.to_owned());
        let (gate, collections) = self.reader_gate(&actor, "item.partial", id, justification)?;
        let read = self.prepare_read(&gate, &collections, id, justification)?;
        let job = self.newest_job_on(id, kind)?;
        let partial = match &job {
            Some(j) if !j.state.is_final() => {
                match self.open_job_partial(j, &read.row, &read.binding.agency) {
                    Ok(p) => p,
                    // Damage is recorded for the operator and the overseer, as a read's is.
                    Err(e) => {
                        let targets = vec![id.to_owned()];
                        return Err(self.refuse(&actor, "item.partial", targets, justification, e));
                    }
                }
            }
            _ => None,
        };
        self.record(
            actor,
            "item.partial",
            vec![id.to_owned()],
            justification,
            Outcome::Allowed,
            job.as_ref().map(|j| format!("job {}", j.id)),
        )?;
        Ok(crate::jobs::JobOnItem {
            meta: read.meta,
            job,
            partial,
        })
    }

    /// Reads many items for one principal, each as [`Self::get`] decides, with the entries of
    /// every read allowed appended to the audit log at once (one durable write, not one per
    /// item) before any content is returned. Refusals are recorded as they happen and come
    /// back in their item's place.
    pub fn get_many(
        &mut self,
        principal: &str,
        ids: &[String],
        justification: Option<&str>,
    ) -> Result<Vec<Result<ItemRead>>> {
        let actor = Actor::Principal(principal.to_owned());
        // One gate for the batch: the principal, the collections and the operations are read
        // once, not once per item.
        let (gate, collections) = match self
            .gate(principal)
            .and_then(|g| Ok((g, self.collections()?)))
        {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.get", ids.to_vec(), justification, e)),
        };
        let mut out: Vec<Option<Result<ItemRead>>> = ids.iter().map(|_| None).collect();
        let mut read_at: Vec<(usize, i64)> = Vec::new();
        // A store that cannot answer stops the batch; what was read goes unreturned.
        let fatal = |e: &Error| matches!(e, Error::Catalog(_) | Error::Audit(_) | Error::Io { .. });
        // Locations are listed and opened once for the batch, and each chunk's objects
        // fetched together; every item is still gated, bound and opened on its own.
        let locations = self.locations()?;
        let mut opened: HashMap<i64, ObjectLocation> = HashMap::new();
        let numbered: Vec<(usize, &String)> = ids.iter().enumerate().collect();
        for chunk in numbered.chunks(FEED_BATCH) {
            let mut ready = Vec::with_capacity(chunk.len());
            for &(n, id) in chunk {
                let prepared = self
                    .prepare_read(&gate, &collections, id, justification)
                    .and_then(|p| self.plan_content(p, &locations, &mut opened, justification));
                match prepared {
                    Ok(p) => ready.push((n, p)),
                    Err(e) if fatal(&e) => return Err(e),
                    Err(e) => out[n] = Some(Err(e)),
                }
            }
            let fetches = ready
                .iter()
                .filter_map(|(_, p)| {
                    let loc = opened.get(&p.content.location_id)?;
                    let (name, range) = content_span(&p.row, &p.content).ok()?;
                    Some((loc, name, range))
                })
                .collect::<Vec<_>>();
            // One object that cannot be fetched fails the whole fetch: then each is read on
            // its own, so the failure is the one item's, as for a single read.
            let fetched = if fetches.len() == ready.len() {
                ObjectLocation::get_many(&self.rt, &fetches).ok()
            } else {
                None
            };
            let mut fetched = fetched.map(Vec::into_iter);
            for (n, p) in ready {
                let sealed = match fetched.as_mut().and_then(Iterator::next) {
                    Some(bytes) => Ok(bytes),
                    None => self.fetch_content(&p, &opened),
                };
                let targets = vec![p.row.id.clone()];
                let actor = Actor::Principal(principal.to_owned());
                let content = sealed.and_then(|sealed| {
                    open_content(p.access, &p.row, &p.content, &p.cdek, &sealed, &p.binding)
                });
                match content {
                    Ok(c) => {
                        read_at.push((n, now_ms()));
                        out[n] = Some(Ok((p.meta, c)));
                    }
                    Err(e) => {
                        let e = self.refuse(&actor, "item.get", targets, justification, e);
                        if fatal(&e) {
                            return Err(e);
                        }
                        out[n] = Some(Err(e));
                    }
                }
            }
        }
        let entries: Vec<Entry> = read_at
            .iter()
            .filter_map(|&(n, time_ms)| match &out[n] {
                Some(Ok((meta, _))) => Some(read_entry(principal, meta, time_ms, justification)),
                _ => None,
            })
            .collect();
        if !entries.is_empty() {
            self.append_audit(&entries)?;
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Layout("an item was not read".into()))))
            .collect())
    }

    /// The content row, key and location of a read the gate allowed, checked before any
    /// object is fetched; a failure is refused (and audited) as on a single read.
    fn plan_content(
        &mut self,
        p: PreparedRead,
        locations: &[Location],
        opened: &mut HashMap<i64, ObjectLocation>,
        justification: Option<&str>,
    ) -> Result<PlannedRead> {
        let actor = Actor::Principal(p.who.clone());
        let targets = vec![p.row.id.clone()];
        let planned = (|| {
            let content = self
                .catalog
                .content(p.row.content_id)?
                .ok_or_else(|| Error::Layout(format!("item {} has no content row", p.row.id)))?;
            if !opened.contains_key(&content.location_id) {
                let loc = locations
                    .iter()
                    .find(|l| l.id == content.location_id)
                    .ok_or_else(|| unknown_location(&p.row))?;
                opened.insert(loc.id, loc.open()?);
            }
            let cdek = self.content_key(&p.row, &content, &p.binding.agency)?;
            Ok((content, cdek))
        })();
        match planned {
            Ok((content, cdek)) => Ok(PlannedRead {
                access: p.access,
                row: p.row,
                meta: p.meta,
                binding: p.binding,
                content,
                cdek,
            }),
            Err(e) => Err(self.refuse(&actor, "item.get", targets, justification, e)),
        }
    }

    /// The sealed bytes of one planned read, fetched on their own.
    fn fetch_content(
        &self,
        p: &PlannedRead,
        opened: &HashMap<i64, ObjectLocation>,
    ) -> Result<Vec<u8>> {
        let loc = opened
            .get(&p.content.location_id)
            .ok_or_else(|| unknown_location(&p.row))?;
        match content_span(&p.row, &p.content)? {
            (name, Some(range)) => loc.get_range(&self.rt, name, range),
            (name, None) => loc.get(&self.rt, name),
        }
        .map_err(|e| {
            Error::Damaged(format!(
                "the content of item {} cannot be read from its location: {e}",
                p.row.id
            ))
        })
    }

    /// [`Self::get`] up to its audit entry: every refusal is recorded here, the read allowed
    /// is the caller's to record before it returns the content.
    fn get_unrecorded(
        &mut self,
        gate: &Gate,
        collections: &[Collection],
        id: &str,
        justification: Option<&str>,
    ) -> Result<(ItemMeta, Vec<u8>)> {
        let p = self.prepare_read(gate, collections, id, justification)?;
        let actor = Actor::Principal(p.who);
        let targets = vec![p.row.id.clone()];
        let content = match self.read_bound_content(p.access, &p.row, &p.binding) {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&actor, "item.get", targets, justification, e)),
        };
        Ok((p.meta, content))
    }

    /// Every check of a read before its content is touched: the row, need-to-know, the
    /// sealed metadata and its binding, retention, the gate's decision (the [`Access`]), the
    /// collection the metadata names, the justification. Every refusal is recorded here.
    fn prepare_read(
        &mut self,
        gate: &Gate,
        collections: &[Collection],
        id: &str,
        justification: Option<&str>,
    ) -> Result<PreparedRead> {
        let actor = Actor::Principal(gate.principal().name.clone());
        let targets = vec![id.to_owned()];
        let Some(row) = self.catalog.item(id)? else {
            let e = Error::NotFoundOrNotPermitted { reason: None };
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        };
        // Need-to-know first, on the collection the row names: an item in a collection the
        // principal may not see reads as absent, even when it is damaged or its agency's key is
        // locked. Damage is still found (the metadata is opened all the same, and it is bound
        // to its collection, so a row moved into another collection fails to open) and named
        // in the audit entry, for the operator and the overseer, never to this principal.
        if !gate.visibility().contains(CollectionId(row.collection_id)) {
            let damage = self
                .agency_name(row.agency_id)
                .and_then(|agency| self.open_sealed_meta(&row, &agency))
                .err()
                .filter(|e| matches!(e, Error::Damaged(_)));
            let absent = Error::NotFoundOrNotPermitted {
                reason: Some(Denial::NeedToKnow),
            };
            return Err(match damage {
                Some(d) => {
                    self.record(
                        actor,
                        "item.get",
                        targets,
                        justification,
                        Outcome::Refused,
                        Some(d.to_string()),
                    )?;
                    absent
                }
                None => self.refuse(&actor, "item.get", targets, justification, absent),
            });
        }
        let opened = self
            .agency_name(row.agency_id)
            .and_then(|agency| self.open_sealed_meta(&row, &agency));
        let (meta, marking, binding) = match opened {
            Ok(m) => m,
            Err(e) => return Err(self.refuse(&actor, "item.get", targets, justification, e)),
        };
        let schedules = self.retention_schedules()?;
        if Platform::past_retention(&meta, &marking, row.collection_id, &schedules, now_ms())
            && self.hold_on(CollectionId(row.collection_id))?.is_none()
        {
            // Past its retention: gone, whether or not the worker has
            // shredded it yet (unless a legal hold keeps it).
            let e = Error::NotFoundOrNotPermitted { reason: None };
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        }
        let access = match gate.check(&row.id, &marking, CollectionId(row.collection_id)) {
            Ok(a) => a,
            Err(d) => {
                let e = Error::NotFoundOrNotPermitted { reason: Some(d) };
                return Err(self.refuse(&actor, "item.get", targets, justification, e));
            }
        };
        // The collection the gate decided on must be the one the item's
        // sealed metadata names.
        let coll = collections.iter().find(|c| c.id.0 == row.collection_id);
        let Some(c) = coll.filter(|c| format!("{}/{}", c.agency, c.name) == meta.collection) else {
            let e = Error::Damaged(format!(
                "item {id} lies in a collection other than the one it was stored in"
            ));
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        };
        if gate.check_justification(c, justification).is_err() {
            let e = Error::JustificationRequired {
                collection: meta.collection.clone(),
            };
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        }
        Ok(PreparedRead {
            who: gate.principal().name.clone(),
            access,
            row,
            meta,
            binding,
        })
    }

    /// Reads an item's content, checked against what its sealed metadata
    /// says of it.
    pub(super) fn read_content(&mut self, access: Access, row: &ItemRow) -> Result<Vec<u8>> {
        let agency = self.agency_name(row.agency_id)?;
        let (_, _, binding) = self.open_sealed_meta(row, &agency)?;
        self.read_bound_content(access, row, &binding)
    }

    /// [`Self::read_content`] with the binding already opened.
    pub(super) fn read_bound_content(
        &mut self,
        access: Access,
        row: &ItemRow,
        binding: &ContentBinding,
    ) -> Result<Vec<u8>> {
        let agency = &binding.agency;
        let c = self
            .catalog
            .content(row.content_id)?
            .ok_or_else(|| Error::Layout(format!("item {} has no content row", row.id)))?;
        let loc = self
            .locations()?
            .into_iter()
            .find(|l| l.id == c.location_id)
            .ok_or_else(|| unknown_location(row))?;
        let cdek = self.content_key(row, &c, agency)?;
        let sealed = match content_span(row, &c)? {
            (name, Some(range)) => loc.open()?.get_range(&self.rt, name, range),
            (name, None) => loc.open()?.get(&self.rt, name),
        }
        .map_err(|e| {
            Error::Damaged(format!(
                "the content of item {} cannot be read from its location: {e}",
                row.id
            ))
        })?;
        open_content(access, row, &c, &cdek, &sealed, binding)
    }

    /// Unwraps the data key of an item's content.
    pub(super) fn content_key(
        &mut self,
        row: &ItemRow,
        c: &ContentRow,
        agency: &str,
    ) -> Result<DataKey> {
        self.agency_keys(agency)?;
        let keys = self.agencies.get(agency).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: agency.to_owned(),
        })?;
        keys.provider
            .unwrap(
                &WrappedKey {
                    kek_version: c.kek_version,
                    bytes: c.wrapped_key.clone(),
                },
                &wrap_aad("contents", &c.object),
            )
            .map_err(|e| Error::Corrupt {
                id: row.id.clone(),
                source: e,
            })
    }

    /// Lists what the principal may see, optionally in one collection. Bulk
    /// collections are listed only with a justification; without one they are
    /// left out and named in [`Listing::skipped_bulk`] (or, when the one
    /// collection asked for is bulk, the listing is refused).
    pub fn list(
        &mut self,
        principal: &str,
        collection: Option<&str>,
        justification: Option<&str>,
    ) -> Result<Listing> {
        let actor = Actor::Principal(principal.to_owned());
        let targets: Vec<String> = collection.map(|c| vec![c.to_owned()]).unwrap_or_default();
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.list", targets, justification, e)),
        };
        let visible: Vec<Collection> = self
            .collections()?
            .into_iter()
            .filter(|c| gate.visibility().contains(c.id))
            .collect();
        let chosen: Vec<Collection> = match collection {
            Some(name) => {
                let Some(c) = visible
                    .into_iter()
                    .find(|c| format!("{}/{}", c.agency, c.name) == name)
                else {
                    let e = Error::NotFoundOrNotPermitted {
                        reason: Some(Denial::NeedToKnow),
                    };
                    return Err(self.refuse(&actor, "item.list", targets, justification, e));
                };
                if gate.check_justification(&c, justification).is_err() {
                    let e = Error::JustificationRequired {
                        collection: name.to_owned(),
                    };
                    return Err(self.refuse(&actor, "item.list", targets, justification, e));
                }
                vec![c]
            }
            None => visible,
        };
        let mut listing = Listing::default();
        let mut ids = Vec::new();
        for c in &chosen {
            if gate.check_justification(c, justification).is_err() {
                listing
                    .skipped_bulk
                    .push(format!("{}/{}", c.agency, c.name));
                continue;
            }
            ids.push(c.id.0);
        }
        let rows = self.catalog.items_in(&ids)?;
        let names: HashMap<u32, String> = chosen
            .iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let now = now_ms();
        let held = self.held_collections()?;
        let schedules = self.retention_schedules()?;
        for row in rows {
            let (meta, marking) = match self.open_meta(&row) {
                Ok(m) => m,
                // Not readable here, so not listed: nobody may see it now.
                Err(Error::KeyUnavailable { .. }) => continue,
                Err(e) => return Err(self.refuse(&actor, "item.list", targets, justification, e)),
            };
            if names.get(&row.collection_id) != Some(&meta.collection) {
                let e = Error::Damaged(format!(
                    "item {} lies in a collection other than the one it was stored in",
                    row.id
                ));
                return Err(self.refuse(&actor, "item.list", targets, justification, e));
            }
            if gate
                .decide(&marking, CollectionId(row.collection_id))
                .is_ok()
                && (!Platform::past_retention(&meta, &marking, row.collection_id, &schedules, now)
                    || held.contains(&row.collection_id))
            {
                listing.items.push(meta);
            }
        }
        // One entry per 500 items listed keeps entries small on big listings.
        let ids: Vec<String> = listing.items.iter().map(|m| m.id.clone()).collect();
        let mut entries = Vec::new();
        for chunk in ids
            .chunks(500)
            .map(<[String]>::to_vec)
            .chain(ids.is_empty().then(Vec::new))
        {
            let mut t = targets.clone();
            t.extend(chunk);
            entries.push(Entry {
                time_ms: now_ms(),
                principal: actor.name(),
                action: "item.list".into(),
                targets: t,
                justification: justification.map(str::to_owned),
                outcome: Outcome::Allowed,
                reason: None,
                about: None,
            });
        }
        self.append_audit(&entries)?;
        Ok(listing)
    }
}

/// The entry of one allowed read, naming the item's collection and marking as they were
/// when it was read (for the overseer's report).
fn read_entry(
    principal: &str,
    meta: &ItemMeta,
    time_ms: i64,
    justification: Option<&str>,
) -> Entry {
    Entry {
        time_ms,
        principal: principal.to_owned(),
        action: "item.get".into(),
        targets: vec![meta.id.clone()],
        justification: justification.map(str::to_owned),
        outcome: Outcome::Allowed,
        reason: None,
        about: Some(bletchley_audit::About {
            collection: meta.collection.clone(),
            marking: meta.marking.clone(),
        }),
    }
}
