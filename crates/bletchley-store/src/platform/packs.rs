//! Packs: a batch's small contents sealed one after another into one object, each under its
//! own key and name, so that a batch costs a few objects rather than one each.

use super::*;

/// Largest content written into a pack; larger ones are objects of their
/// own, so reading one never reads a pack that is mostly others.
pub(super) const PACKED_CONTENT_MAX: usize = 1 << 20;

/// Size past which a pack is closed and the next begun, which bounds what
/// reading back a whole pack costs.
const PACK_MAX: usize = 16 << 20;

/// The packs of one ingest batch being filled: each content's sealed bytes
/// are appended to the open pack, which is closed when the next content
/// would take it past [`PACK_MAX`].
///
/// A packed content is named after its pack and its place in it
/// (`PACK#N`): unique, as the seal and the key wrap require, and adjacent in
/// the catalog's index of names to the rest of its batch, so that a batch's
/// inserts touch a few index pages rather than one random page each.
#[derive(Default)]
pub(super) struct Packer {
    done: Vec<(String, Vec<u8>)>,
    open: Option<OpenPack>,
}

/// The pack being filled.
pub(super) struct OpenPack {
    name: String,
    bytes: Vec<u8>,
    /// Contents named in it so far.
    named: usize,
}

impl Packer {
    /// The name of the next content, of `len` bytes, which the caller seals
    /// under it and then hands to [`Packer::add`].
    pub(super) fn next_name(&mut self, len: usize) -> Result<String> {
        if let Some(open) = &self.open
            && open.bytes.len() + len > PACK_MAX
        {
            self.done
                .extend(self.open.take().map(|o| (o.name, o.bytes)));
        }
        let open = match &mut self.open {
            Some(open) => open,
            open @ None => open.insert(OpenPack {
                name: object_name()?,
                bytes: Vec::new(),
                named: 0,
            }),
        };
        open.named += 1;
        Ok(format!("{}#{}", open.name, open.named))
    }

    /// Appends the sealed content last named; says where it lies.
    pub(super) fn add(&mut self, sealed: Vec<u8>) -> Result<PackSlice> {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| Error::Layout("a content was packed before it was named".into()))?;
        let offset = open.bytes.len() as i64;
        open.bytes.extend_from_slice(&sealed);
        Ok(PackSlice {
            pack: open.name.clone(),
            offset,
        })
    }

    /// Every pack, to be written.
    pub(super) fn finish(mut self) -> Vec<(String, Vec<u8>)> {
        self.done
            .extend(self.open.take().map(|o| (o.name, o.bytes)));
        self.done
    }
}

/// The object that holds a content's sealed bytes, and which of its bytes
/// they are (`None`: all of them).
pub(super) fn content_span<'a>(
    row: &ItemRow,
    c: &'a ContentRow,
) -> Result<(&'a str, Option<std::ops::Range<u64>>)> {
    let Some(p) = &c.packed else {
        return Ok((&c.object, None));
    };
    let bad = || {
        Error::Layout(format!(
            "content of {} has an impossible place in its pack",
            row.id
        ))
    };
    let start = u64::try_from(p.offset).map_err(|_| bad())?;
    let len = u64::try_from(c.size).map_err(|_| bad())?;
    let end = start.checked_add(len).ok_or_else(bad)?;
    Ok((&p.pack, Some(start..end)))
}

pub(super) fn object_name() -> Result<String> {
    let mut b = [0u8; 16];
    bletchley_crypto::random_bytes(&mut b)?;
    let u = hex::encode(b);
    Ok(format!("{}/{}", &u[..2], u))
}
