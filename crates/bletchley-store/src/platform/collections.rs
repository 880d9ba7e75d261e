//! Collections and operations: need-to-know (which collections a principal may see, and what a joint operation shares).

use super::*;

impl Platform {
    /// Adds a collection `agency/name`.
    pub fn add_collection(&mut self, full: &str, bulk: bool) -> Result<CollectionId> {
        let (agency, name) = full.split_once('/').ok_or_else(|| {
            Error::Invalid(format!("collection {full:?}: write it as AGENCY/NAME"))
        })?;
        valid_name("collection", name, 128, b"-_. ")?;
        let agency_id = self.agency_id(agency)?;
        let tag = self.tag("collection", full);
        if self
            .catalog
            .find_sealed(SealedTable::Collections, &tag)?
            .is_some()
        {
            return Err(Error::Exists {
                kind: "collection",
                name: full.into(),
            });
        }
        let rec = CollectionRecord {
            agency: agency.into(),
            name: name.into(),
            bulk,
            hold: None,
        };
        let id = self.insert_row(SealedTable::Collections, &tag, Some(agency_id), &rec)?;
        self.record(
            Actor::Operator,
            "collection.add",
            vec![full.into()],
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(CollectionId(u32::try_from(id).map_err(|_| {
            Error::Layout("too many collections".into())
        })?))
    }

    /// Every collection.
    pub fn collections(&self) -> Result<Vec<Collection>> {
        let mut out = Vec::new();
        for row in self.catalog.all_sealed(SealedTable::Collections)? {
            // Bound to its row number, tag and agency: a swapped or moved
            // record does not open.
            let rec: CollectionRecord = self.open_row(SealedTable::Collections, &row)?;
            out.push(Collection {
                id: CollectionId(
                    u32::try_from(row.id).map_err(|_| Error::Layout("collection id".into()))?,
                ),
                agency: rec.agency,
                name: rec.name,
                bulk: rec.bulk,
            });
        }
        Ok(out)
    }

    /// Places a legal hold on a collection (`reason` given) or releases it (`None`): while
    /// held, nothing in it is shredded, by a principal or by retention. An operator's act,
    /// audited.
    pub fn set_hold(&mut self, full: &str, reason: Option<&str>) -> Result<()> {
        if let Some(r) = reason
            && (r.trim().is_empty() || r.len() > 1024)
        {
            return Err(Error::Invalid(
                "a legal hold needs a reason (a case or order reference) of 1 to 1024 bytes".into(),
            ));
        }
        let tag = self.tag("collection", full);
        let row = self
            .catalog
            .find_sealed(SealedTable::Collections, &tag)?
            .ok_or_else(|| Error::Unknown {
                kind: "collection",
                name: full.into(),
            })?;
        let mut rec: CollectionRecord = self.open_row(SealedTable::Collections, &row)?;
        let action = match (reason, &rec.hold) {
            (Some(_), Some(h)) => {
                return Err(Error::Invalid(format!(
                    "collection {full} is already under legal hold ({})",
                    h.reason
                )));
            }
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "collection {full} is not under legal hold"
                )));
            }
            (Some(_), None) => "collection.hold",
            (None, Some(_)) => "collection.release",
        };
        rec.hold = reason.map(|r| LegalHold {
            reason: r.trim().to_owned(),
            since_ms: now_ms(),
        });
        // Recorded first: a hold placed is in the log even if the write below fails.
        self.record(
            Actor::Operator,
            action,
            vec![full.into()],
            reason,
            Outcome::Allowed,
            None,
        )?;
        self.update_row(SealedTable::Collections, &row, &rec)
    }

    /// The legal holds in force, by collection `agency/name`.
    pub fn legal_holds(&self) -> Result<Vec<(String, LegalHold)>> {
        let mut out = Vec::new();
        for row in self.catalog.all_sealed(SealedTable::Collections)? {
            let rec: CollectionRecord = self.open_row(SealedTable::Collections, &row)?;
            if let Some(h) = rec.hold {
                out.push((format!("{}/{}", rec.agency, rec.name), h));
            }
        }
        Ok(out)
    }

    /// The collections under legal hold, by number.
    pub(super) fn held_collections(&self) -> Result<std::collections::HashSet<u32>> {
        let mut out = std::collections::HashSet::new();
        for row in self.catalog.all_sealed(SealedTable::Collections)? {
            let rec: CollectionRecord = self.open_row(SealedTable::Collections, &row)?;
            if rec.hold.is_some() {
                out.insert(
                    u32::try_from(row.id).map_err(|_| Error::Layout("collection id".into()))?,
                );
            }
        }
        Ok(out)
    }

    /// The hold on collection `id`, if one is in force.
    pub(super) fn hold_on(&self, id: CollectionId) -> Result<Option<(String, LegalHold)>> {
        for row in self.catalog.all_sealed(SealedTable::Collections)? {
            if row.id == i64::from(id.0) {
                let rec: CollectionRecord = self.open_row(SealedTable::Collections, &row)?;
                return Ok(rec
                    .hold
                    .map(|h| (format!("{}/{}", rec.agency, rec.name), h)));
            }
        }
        Ok(None)
    }

    pub(super) fn collection_by_name(&self, full: &str) -> Result<Option<Collection>> {
        Ok(self
            .collections()?
            .into_iter()
            .find(|c| format!("{}/{}", c.agency, c.name) == full))
    }

    /// Adds a joint operation.
    pub fn add_operation(&mut self, op: &Operation) -> Result<()> {
        valid_name("operation", &op.name, 128, b"-_. ")?;
        if op.agencies.is_empty() {
            return Err(Error::Invalid(
                "an operation needs at least one member agency".into(),
            ));
        }
        for a in &op.agencies {
            self.agency_id(a)?;
        }
        for m in &op.members {
            let p = self.principal(m)?;
            if !op.agencies.contains(&p.agency) {
                return Err(Error::Invalid(format!(
                    "member {m} belongs to {}, which is not a member agency",
                    p.agency
                )));
            }
        }
        if op.end.is_some_and(|e| e < op.start) {
            return Err(Error::Invalid("the operation ends before it starts".into()));
        }
        let tag = self.tag("operation", &op.name);
        if self
            .catalog
            .find_sealed(SealedTable::Operations, &tag)?
            .is_some()
        {
            return Err(Error::Exists {
                kind: "operation",
                name: op.name.clone(),
            });
        }
        self.insert_row(SealedTable::Operations, &tag, None, op)?;
        self.record(
            Actor::Operator,
            "operation.add",
            vec![op.name.clone()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Every operation.
    pub fn operations(&self) -> Result<Vec<Operation>> {
        self.catalog
            .all_sealed(SealedTable::Operations)?
            .into_iter()
            .map(|r| self.open_row(SealedTable::Operations, &r))
            .collect()
    }

    /// The operations `principal` is a member of, with their shared
    /// collections by name (current and withdrawn), for the operations
    /// page. Audited; other operations are not mentioned at all.
    pub fn operations_of(&mut self, principal: &str) -> Result<Vec<OperationView>> {
        let actor = Actor::Principal(principal.to_owned());
        let p = match self.acting(principal) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "operation.list", vec![], None, e)),
        };
        let out = self.operation_views(|o| o.is_member(&p))?;
        self.record(
            actor,
            "operation.list",
            out.iter().map(|o| o.operation.name.clone()).collect(),
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(out)
    }

    /// The operations `keep` keeps, by name, with their shares' collections
    /// named and whether each runs now.
    fn operation_views(&self, keep: impl Fn(&Operation) -> bool) -> Result<Vec<OperationView>> {
        let names: HashMap<u32, String> = self
            .collections()?
            .into_iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let now = now_ms() / 1000;
        let mut out: Vec<OperationView> = self
            .operations()?
            .into_iter()
            .filter(|o| keep(o))
            .map(|o| OperationView {
                active: o.active(now),
                shares: o
                    .shares
                    .iter()
                    .map(|s| SharedCollection {
                        collection: names
                            .get(&s.collection.0)
                            .cloned()
                            .unwrap_or_else(|| format!("#{}", s.collection.0)),
                        since: s.since,
                        withdrawn: s.withdrawn,
                    })
                    .collect(),
                operation: o,
            })
            .collect();
        out.sort_by(|a, b| a.operation.name.cmp(&b.operation.name));
        Ok(out)
    }

    pub(super) fn update_operation(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Operation, &[Collection]) -> Result<()>,
    ) -> Result<()> {
        let tag = self.tag("operation", name);
        let row = self
            .catalog
            .find_sealed(SealedTable::Operations, &tag)?
            .ok_or_else(|| Error::Unknown {
                kind: "operation",
                name: name.into(),
            })?;
        let mut op: Operation = self.open_row(SealedTable::Operations, &row)?;
        f(&mut op, &self.collections()?)?;
        self.update_row(SealedTable::Operations, &row, &op)
    }

    /// Shares a collection of a member agency into an operation.
    pub fn share(&mut self, op_name: &str, collection: &str) -> Result<()> {
        self.change_share(Actor::Operator, None, op_name, collection, false)
    }

    /// Withdraws a shared collection from an operation, from now on.
    pub fn withdraw(&mut self, op_name: &str, collection: &str) -> Result<()> {
        self.change_share(Actor::Operator, None, op_name, collection, true)
    }

    /// The operations `admin`'s agency is a member of, with every share (its
    /// own and the other members'), for the Admin page. Admins only; audited as
    /// `admin.operations`.
    pub fn agency_operations(&mut self, admin: &str) -> Result<Vec<OperationView>> {
        let p = self.acting_admin(
            admin,
            "admin.operations",
            &[],
            "see the agency's operations",
        )?;
        let out = self.operation_views(|o| o.agencies.contains(&p.agency))?;
        self.record(
            Actor::Principal(admin.to_owned()),
            "admin.operations",
            out.iter().map(|o| o.operation.name.clone()).collect(),
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(out)
    }

    /// An agency admin shares one of its own agency's collections into an
    /// operation its agency is a member of (`withdraw`: takes it back). The
    /// agency that holds a collection decides who it is shared with; another
    /// agency's admin is refused, and so is a non-admin, audited.
    pub fn share_as(
        &mut self,
        admin: &str,
        op_name: &str,
        collection: &str,
        withdraw: bool,
    ) -> Result<()> {
        let action = if withdraw {
            "operation.withdraw"
        } else {
            "operation.share"
        };
        let targets = vec![op_name.to_owned(), collection.to_owned()];
        let p = self.acting_admin(admin, action, &targets, "share the agency's collections")?;
        let actor = Actor::Principal(admin.to_owned());
        match self.change_share(
            actor.clone(),
            Some(&p.agency),
            op_name,
            collection,
            withdraw,
        ) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.refuse(&actor, action, targets, None, e)),
        }
    }

    /// Shares (or withdraws) `collection` into `op_name`, as `actor`; with
    /// `agency`, only a collection of that agency.
    fn change_share(
        &mut self,
        actor: Actor,
        agency: Option<&str>,
        op_name: &str,
        collection: &str,
        withdraw: bool,
    ) -> Result<()> {
        let now = now_ms() / 1000;
        self.update_operation(op_name, |op, colls| {
            let found = colls
                .iter()
                .find(|c| format!("{}/{}", c.agency, c.name) == collection);
            let c = match (found, agency) {
                (Some(c), Some(a)) if c.agency == a => c,
                // Another agency's collection reads as one that does not exist.
                (_, Some(_)) => {
                    return Err(Error::NotFoundOrNotPermitted {
                        reason: Some(bletchley_policy::Denial::NeedToKnow),
                    });
                }
                (Some(c), None) => c,
                (None, None) => {
                    return Err(Error::Unknown {
                        kind: "collection",
                        name: collection.into(),
                    });
                }
            };
            if withdraw {
                withdraw_share(op, c, collection, now)
            } else {
                add_share(op, c, collection, now)
            }
        })?;
        self.record(
            actor,
            if withdraw {
                "operation.withdraw"
            } else {
                "operation.share"
            },
            vec![op_name.into(), collection.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }
}

fn add_share(op: &mut Operation, c: &Collection, collection: &str, now: i64) -> Result<()> {
    if !op.agencies.contains(&c.agency) {
        return Err(Error::Invalid(format!(
            "{} is not a member of operation {}",
            c.agency, op.name
        )));
    }
    if op.shared_at(now).any(|id| id == c.id) {
        return Err(Error::Exists {
            kind: "share of",
            name: collection.into(),
        });
    }
    op.shares.push(Share {
        collection: c.id,
        since: now,
        withdrawn: None,
    });
    Ok(())
}

fn withdraw_share(op: &mut Operation, c: &Collection, collection: &str, now: i64) -> Result<()> {
    let mut found = false;
    for s in op
        .shares
        .iter_mut()
        .filter(|s| s.collection == c.id && s.withdrawn.is_none())
    {
        // Withdrawal takes effect at once, even within the same second.
        s.withdrawn = Some(now.min(s.since.max(now)));
        if s.since >= now {
            s.since = now - 1;
        }
        found = true;
    }
    if !found {
        return Err(Error::Invalid(format!(
            "{collection} is not shared into {}",
            op.name
        )));
    }
    Ok(())
}
