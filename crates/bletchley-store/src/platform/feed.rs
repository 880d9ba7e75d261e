//! Handing what this process stores to a derived store as it is stored.
//!
//! The search index is built from the catalog by reconciling (reading back
//! every item it lacks). For a bulk ingest that is a second pass over the
//! whole input, decrypting what was just encrypted; feeding hands the
//! plaintext over while it is still in memory instead. Reconciling stays the
//! source of truth: the feed only says up to which items generation it holds
//! exactly the catalog's items, and only when nothing else changed them.

use crate::catalog::GenerationStep;
use crate::item::IndexFeedItem;

/// Items stored since the last [`super::Platform::take_fed`], for a derived
/// store. Not for principals: whatever is built from them must apply the
/// gate itself.
#[derive(Debug, Default)]
pub struct Fed {
    /// The items, in the order they were stored (derived parts after their
    /// source's batch).
    pub items: Vec<IndexFeedItem>,
    /// The items generation after these items, when every change of the
    /// items since feeding began was made here and fed: a store that held
    /// exactly the catalog's items at the generation feeding began from, and
    /// adds all that was fed, then holds exactly the catalog's items at this
    /// one. `None` when another change (another process's ingest, a shred)
    /// came between; the store must then reconcile.
    pub generation: Option<u64>,
}

/// The feed's state while it is on.
#[derive(Debug)]
pub(super) struct Feed {
    items: Vec<IndexFeedItem>,
    /// Where the chain of this process's commits stands; `None` once broken.
    at: Option<u64>,
}

impl Feed {
    /// A feed for a store that holds the catalog's items as of `generation`
    /// (`None`: not known to hold them as of any).
    pub(super) fn from(generation: Option<u64>) -> Feed {
        Feed {
            items: Vec::new(),
            at: generation,
        }
    }

    /// Records a commit of `items` that moved the generation by `step`.
    pub(super) fn stored(&mut self, items: Vec<IndexFeedItem>, step: GenerationStep) {
        self.items.extend(items);
        self.at = self.at.filter(|&at| at == step.before).map(|_| step.after);
    }

    /// What was fed since the last call, and where the chain stands.
    pub(super) fn take(&mut self) -> Fed {
        Fed {
            items: std::mem::take(&mut self.items),
            generation: self.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(before: u64, after: u64) -> GenerationStep {
        GenerationStep { before, after }
    }

    #[test]
    fn the_chain_holds_only_through_this_process_s_own_commits() {
        let mut f = Feed::from(Some(7));
        f.stored(Vec::new(), step(7, 11));
        f.stored(Vec::new(), step(11, 3));
        assert_eq!(f.take().generation, Some(3));
        // Another process committed 3 -> 5: the next step starts from 5.
        f.stored(Vec::new(), step(5, 9));
        assert_eq!(f.take().generation, None);
        // Once broken it stays broken, even if a step happens to line up.
        f.stored(Vec::new(), step(9, 10));
        assert_eq!(f.take().generation, None);
        let mut unknown = Feed::from(None);
        unknown.stored(Vec::new(), step(0, 1));
        assert_eq!(unknown.take().generation, None);
    }
}
