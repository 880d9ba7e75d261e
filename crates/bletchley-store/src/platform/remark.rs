//! Re-marking: changing an item's protective marking, with authority. An upgrade (a
//! marking that covers the old one, so that no one new may read) is the owning agency's to
//! make alone; a downgrade or a widened releasability is asked for by one principal and
//! applied only when a second, of the owning agency and holding the originator role,
//! approves (the two-person rule). The item and everything derived from it take the new
//! marking at once, in one catalog transaction that also records each one's count of
//! re-markings in the guarded `meta` table (so the host cannot put an earlier sealed copy
//! back) and lists them for the search index to take again.

use super::*;

use bletchley_policy::Role;

/// The guarded `meta` key of the requests waiting for their second principal.
const REQUESTS: &str = "remark.requests";
/// The guarded `meta` key of the items the search index must take again.
const STALE: &str = "index.stale";
/// Items re-marked since the vector index last took them (its own list: the two indexes sync
/// apart).
pub(super) const VECTORS_STALE: &str = "vectors.stale";

fn count_key(id: &str) -> String {
    format!("remark:{id}")
}

/// A downgrade or widening waiting for an originator's approval.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemarkRequest {
    /// Its handle, for `reclassify approve`.
    pub id: String,
    /// The item.
    pub item: String,
    /// Its marking when asked.
    pub from: String,
    /// The marking asked for.
    pub to: String,
    /// The authority cited.
    pub authority: String,
    /// Who asked.
    pub by: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

/// A re-marking done.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RemarkReport {
    /// The item asked for.
    pub item: String,
    /// Its marking before.
    pub from: String,
    /// Its marking now.
    pub to: String,
    /// Every item re-marked: the item, then what was derived from it.
    pub items: Vec<String>,
    /// Who asked (the one principal, for an upgrade).
    pub requested_by: String,
    /// The originator who approved a downgrade or widening.
    pub approved_by: Option<String>,
}

/// What `reclassify` did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Remarked {
    /// An upgrade: done.
    Applied(RemarkReport),
    /// A downgrade or widening: waiting for an originator.
    Pending(RemarkRequest),
}

impl Platform {
    /// How many times item `id` was re-marked, as the guarded record says.
    pub(super) fn remark_count(&self, id: &str) -> Result<u32> {
        match self.catalog.meta(&count_key(id))? {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| Error::Layout(format!("item {id}'s count of re-markings: {v:?}"))),
        }
    }

    /// Items re-marked since the search index last took them.
    pub fn index_stale(&self) -> Result<Vec<String>> {
        self.guarded_list(STALE)
    }

    /// Drops `ids` from [`Self::index_stale`] once the index holds their new markings.
    pub fn clear_index_stale(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut stale = self.index_stale()?;
        stale.retain(|s| !ids.contains(s));
        let json = serde_json::to_string(&stale).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(STALE, &json)
    }

    /// Items re-marked since the vector index last took them.
    pub fn vectors_stale(&self) -> Result<Vec<String>> {
        self.guarded_list(VECTORS_STALE)
    }

    /// Drops `ids` from [`Self::vectors_stale`] once the vector index holds their new markings.
    pub fn clear_vectors_stale(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut stale = self.vectors_stale()?;
        stale.retain(|s| !ids.contains(s));
        let json = serde_json::to_string(&stale).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(VECTORS_STALE, &json)
    }

    pub(super) fn guarded_list<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        match self.catalog.meta(key)? {
            None => Ok(Vec::new()),
            Some(s) if s.is_empty() => Ok(Vec::new()),
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Layout(format!("guarded record {key}: {e}"))),
        }
    }

    /// Re-marking requests waiting for an originator, of `principal`'s agency (all, for
    /// `None`, the operator).
    pub fn remark_requests(&self, principal: Option<&str>) -> Result<Vec<RemarkRequest>> {
        let all: Vec<RemarkRequest> = self.guarded_list(REQUESTS)?;
        let Some(who) = principal else {
            return Ok(all);
        };
        let p = self.acting(who)?;
        let mut mine = Vec::new();
        for r in all {
            if let Some(row) = self.catalog.item(&r.item)?
                && self.agency_name(row.agency_id)? == p.agency
            {
                mine.push(r);
            }
        }
        Ok(mine)
    }

    /// Re-marks item `id` as `banner` under `authority`, for `principal` of its owning
    /// agency, who must see it now and would still see it after. An upgrade is applied at
    /// once; anything else waits for an originator's [`Self::approve_remark`]. Audited
    /// either way, as is a refusal.
    pub fn reclassify(
        &mut self,
        principal: &str,
        id: &str,
        banner: &str,
        authority: &str,
    ) -> Result<Remarked> {
        let actor = Actor::Principal(principal.to_owned());
        let targets = vec![id.to_owned(), format!("to {banner}")];
        let checked = self.check_remark(principal, id, banner, authority);
        let (row, meta, old, new, p) = match checked {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&actor, "item.reclassify", targets, None, e)),
        };
        if new.covers(&old, self.home()) {
            let report = self.apply_remark(&row, &meta, &new, authority, principal, None)?;
            return Ok(Remarked::Applied(report));
        }
        let mut requests: Vec<RemarkRequest> = self.guarded_list(REQUESTS)?;
        if let Some(r) = requests.iter().find(|r| r.item == row.id) {
            let e = Error::Invalid(format!(
                "request {} to re-mark item {} as {} is already waiting for an originator (approve or reject it first)",
                r.id, r.item, r.to
            ));
            return Err(self.refuse(&actor, "item.reclassify", targets, None, e));
        }
        let mut handle = [0u8; 6];
        bletchley_crypto::random_bytes(&mut handle)?;
        let request = RemarkRequest {
            id: hex::encode(handle),
            item: row.id.clone(),
            from: old.render(),
            to: new.render(),
            authority: authority.trim().to_owned(),
            by: p.name,
            at_ms: now_ms(),
        };
        self.append_audit(&[Entry {
            time_ms: request.at_ms,
            principal: principal.to_owned(),
            action: "item.reclassify-request".into(),
            targets: vec![
                row.id.clone(),
                format!("{} -> {}", request.from, request.to),
                format!("authority: {}", request.authority),
                format!("request {}", request.id),
            ],
            justification: None,
            outcome: Outcome::Allowed,
            reason: Some(
                "a downgrade or widening: waits for an originator of the owning agency".into(),
            ),
            about: Some(bletchley_audit::About {
                collection: meta.collection.clone(),
                marking: meta.marking.clone(),
            }),
        }])?;
        requests.push(request.clone());
        self.put_requests(&requests)?;
        Ok(Remarked::Pending(request))
    }

    /// Approves request `request` as `principal`: an originator of the item's owning
    /// agency other than whoever asked, who sees the item now and at the new marking.
    /// Refused (and audited) if the item's marking changed since the request.
    pub fn approve_remark(&mut self, principal: &str, request: &str) -> Result<RemarkReport> {
        let actor = Actor::Principal(principal.to_owned());
        let (requests, r) = self.remark_request(request)?;
        let targets = vec![r.item.clone(), format!("request {}", r.id)];
        let checked = self
            .check_remark(principal, &r.item, &r.to, &r.authority)
            .and_then(|c| {
                let p = &c.4;
                if !p.has_role(Role::Originator) {
                    return Err(Error::RoleRequired {
                        principal: principal.to_owned(),
                        role: "originator",
                        act: "approve a downgrade or widened releasability",
                    });
                }
                if p.name == r.by {
                    return Err(Error::Invalid(format!(
                        "{principal} asked for this re-marking: another principal (an originator of the owning agency) must approve it"
                    )));
                }
                if c.3.render() != r.to || c.2.render() != r.from {
                    return Err(Error::Invalid(format!(
                        "item {} is marked {} now, not {} as when {} asked: reject this request and ask again",
                        r.item,
                        c.2.render(),
                        r.from,
                        r.by
                    )));
                }
                Ok(c)
            });
        let (row, meta, _, new, _) = match checked {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&actor, "item.reclassify", targets, None, e)),
        };
        let report = self.apply_remark(&row, &meta, &new, &r.authority, &r.by, Some(principal))?;
        let rest: Vec<RemarkRequest> = requests.into_iter().filter(|x| x.id != r.id).collect();
        self.put_requests(&rest)?;
        Ok(report)
    }

    /// Rejects (or, by its author, withdraws) a request: an originator of the owning agency,
    /// or whoever asked. Audited.
    pub fn reject_remark(&mut self, principal: &str, request: &str, reason: &str) -> Result<()> {
        let actor = Actor::Principal(principal.to_owned());
        let (requests, r) = self.remark_request(request)?;
        let targets = vec![r.item.clone(), format!("request {}", r.id)];
        let allowed = self.acting(principal).and_then(|p| {
            let owner = match self.catalog.item(&r.item)? {
                Some(row) => Some(self.agency_name(row.agency_id)?),
                None => None,
            };
            if p.name == r.by
                || (p.has_role(Role::Originator) && owner.as_deref() == Some(&p.agency))
            {
                Ok(())
            } else {
                Err(Error::RoleRequired {
                    principal: principal.to_owned(),
                    role: "originator (of the owning agency) or the requester",
                    act: "reject a re-marking request",
                })
            }
        });
        if let Err(e) = allowed {
            return Err(self.refuse(&actor, "item.reclassify-reject", targets, None, e));
        }
        self.record(
            actor,
            "item.reclassify-reject",
            targets,
            None,
            Outcome::Allowed,
            Some(reason.trim().to_owned()).filter(|r| !r.is_empty()),
        )?;
        let rest: Vec<RemarkRequest> = requests.into_iter().filter(|x| x.id != r.id).collect();
        self.put_requests(&rest)
    }

    /// Every waiting request, and the one named `id`.
    fn remark_request(&self, id: &str) -> Result<(Vec<RemarkRequest>, RemarkRequest)> {
        let requests: Vec<RemarkRequest> = self.guarded_list(REQUESTS)?;
        match requests.iter().find(|r| r.id == id).cloned() {
            Some(r) => Ok((requests, r)),
            None => Err(Error::Unknown {
                kind: "re-marking request",
                name: id.to_owned(),
            }),
        }
    }

    fn put_requests(&mut self, requests: &[RemarkRequest]) -> Result<()> {
        let json = serde_json::to_string(requests).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(REQUESTS, &json)
    }

    /// What every re-marking checks first: a sane authority and banner, an acting
    /// principal of the owning agency who sees the item now and would at the new
    /// marking, an item not derived from another, and a marking that changes.
    #[allow(clippy::type_complexity)]
    fn check_remark(
        &mut self,
        principal: &str,
        id: &str,
        banner: &str,
        authority: &str,
    ) -> Result<(ItemRow, ItemMeta, Marking, Marking, Principal)> {
        if authority.trim().is_empty() || authority.len() > 1000 {
            return Err(Error::Invalid(
                "--authority: cite the authority for the change (1 to 1000 characters)".into(),
            ));
        }
        let new = Marking::parse(banner).map_err(|e| Error::Invalid(format!("--marking: {e}")))?;
        let gate = self.gate(principal)?;
        let row = self
            .catalog
            .item(id)?
            .ok_or(Error::NotFoundOrNotPermitted { reason: None })?;
        let (meta, old) = self.open_meta(&row)?;
        let coll = CollectionId(row.collection_id);
        if let Err(d) = gate.decide(&old, coll) {
            return Err(Error::NotFoundOrNotPermitted { reason: Some(d) });
        }
        let agency = self.agency_name(row.agency_id)?;
        let p = gate.principal().clone();
        if p.agency != agency {
            return Err(Error::RoleRequired {
                principal: principal.to_owned(),
                role: "principal of the owning agency",
                act: "re-mark an item",
            });
        }
        if let Some(source) = &meta.derived_from {
            return Err(Error::Invalid(format!(
                "item {id} was derived from {source}: re-mark {source}, and what was derived from it follows"
            )));
        }
        let home = self.home();
        if new.explicit(home) == old.explicit(home) {
            return Err(Error::Invalid(format!(
                "item {id} is already marked {}",
                old.render()
            )));
        }
        if gate.decide(&new, coll).is_err() {
            return Err(Error::Invalid(format!(
                "{principal} could not see item {id} marked {}: someone cleared for the new marking must re-mark it",
                new.render()
            )));
        }
        Ok((row, meta, old, new, p))
    }

    /// Re-marks `row` and everything derived from it as `new`: the audit entries first (one
    /// per item, naming both principals), then one catalog transaction with the new sealed
    /// metadata, the guarded counts and the index's list.
    fn apply_remark(
        &mut self,
        row: &ItemRow,
        meta: &ItemMeta,
        new: &Marking,
        authority: &str,
        requested_by: &str,
        approved_by: Option<&str>,
    ) -> Result<RemarkReport> {
        let reason = match approved_by {
            Some(a) => format!("asked for by {requested_by}, approved by {a} (originator)"),
            None => format!("an upgrade by {requested_by} of the owning agency"),
        };
        let tree = self.remark_tree(
            row,
            &meta.marking,
            new,
            approved_by.unwrap_or(requested_by),
            "item.reclassify",
            format!("authority: {}", authority.trim()),
            reason,
        )?;
        let banner = new.render();
        Ok(RemarkReport {
            item: row.id.clone(),
            from: meta.marking.clone(),
            to: banner,
            items: tree,
            requested_by: requested_by.to_owned(),
            approved_by: approved_by.map(str::to_owned),
        })
    }

    /// Re-marks a copy held here as the site it came from re-marked it (with what was
    /// derived from it here). Returns whether anything changed: a copy already so marked,
    /// or not here, is left alone. A system path for replication, audited as `sync.remark`.
    pub fn remark_replica(&mut self, origin: &str, meta: &ItemMeta) -> Result<bool> {
        let Some(row) = self.catalog.item(&meta.id)? else {
            return Ok(false);
        };
        let new = Marking::parse(&meta.marking)
            .map_err(|e| Error::Invalid(format!("item {}: marking: {e}", meta.id)))?;
        let (held, old) = self.open_meta(&row)?;
        let home = self.home();
        if old.explicit(home) == new.explicit(home) {
            return Ok(false);
        }
        self.remark_tree(
            &row,
            &held.marking,
            &new,
            &format!("site:{origin}"),
            "sync.remark",
            format!("from site {origin}"),
            format!("re-marked at site {origin}"),
        )?;
        Ok(true)
    }

    /// Re-marks `row` and everything derived from it (depth first, the item first): one
    /// audit entry per item, then one catalog transaction with the new sealed metadata,
    /// each item's count of re-markings and the search index's list. Returns the ids.
    #[allow(clippy::too_many_arguments)]
    fn remark_tree(
        &mut self,
        row: &ItemRow,
        from: &str,
        new: &Marking,
        actor: &str,
        action: &str,
        cited: String,
        reason: String,
    ) -> Result<Vec<String>> {
        let mut tree = vec![row.clone()];
        let mut i = 0;
        while i < tree.len() {
            let agency = self.agency_name(tree[i].agency_id)?;
            let tag = self.lineage_tag(&agency, &tree[i].id)?;
            tree.extend(self.catalog.derived_from(&tag)?);
            i += 1;
        }
        let banner = new.render();
        let change = format!("{from} -> {banner}");
        let now = now_ms();
        let mut rows = Vec::with_capacity(tree.len());
        let mut counts = Vec::with_capacity(tree.len());
        let mut entries = Vec::with_capacity(tree.len());
        for r in &tree {
            let agency = self.agency_name(r.agency_id)?;
            let mut sealed = self.open_sealed(r, &agency)?;
            sealed.meta.marking = banner.clone();
            sealed.meta.remarked += 1;
            counts.push((count_key(&r.id), sealed.meta.remarked.to_string()));
            let mut targets = vec![r.id.clone(), change.clone(), cited.clone()];
            if r.id != row.id {
                targets.push(format!("derived from {}", row.id));
            }
            entries.push(Entry {
                time_ms: now,
                principal: actor.to_owned(),
                action: action.to_owned(),
                targets,
                justification: None,
                outcome: Outcome::Allowed,
                reason: Some(reason.clone()),
                about: Some(bletchley_audit::About {
                    collection: sealed.meta.collection.clone(),
                    marking: banner.clone(),
                }),
            });
            rows.push((r.id.clone(), self.reseal(r, &agency, &sealed)?));
        }
        let mut stale = self.index_stale()?;
        let mut vectors_stale = self.vectors_stale()?;
        for r in &tree {
            if !stale.contains(&r.id) {
                stale.push(r.id.clone());
            }
            if !vectors_stale.contains(&r.id) {
                vectors_stale.push(r.id.clone());
            }
        }
        let stale = serde_json::to_string(&stale).map_err(|e| Error::Layout(e.to_string()))?;
        let vectors_stale =
            serde_json::to_string(&vectors_stale).map_err(|e| Error::Layout(e.to_string()))?;
        self.append_audit(&entries)?;
        let mut keys: Vec<(&str, String)> = counts
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        keys.push((STALE, stale));
        keys.push((VECTORS_STALE, vectors_stale));
        self.catalog.rewrite_items(&rows, &keys)?;
        Ok(tree.into_iter().map(|r| r.id).collect())
    }
}
