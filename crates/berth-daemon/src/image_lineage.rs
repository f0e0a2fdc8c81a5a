//! docker's image tree: which stored image each image names as its parent
//! (the `parent` of its config, set by commits and by the classic
//! builder for every step) and which images have children.
//!
//! berth's images do not depend on their parents (each lists all of its
//! layers), so the tree only shapes what docker shows and removes: `images`
//! hides an untagged image that has children (a build step) unless asked
//! for all, and `rmi` and `image prune` remove, with an image, the untagged
//! ancestors that nothing else needs.

use std::collections::{HashMap, HashSet};

use berth_image::Digest;
use berth_store::ImageRecord;

/// Only the field the tree needs, so that listing parses no more of
/// each config than this.
#[derive(serde::Deserialize)]
struct ParentField {
    #[serde(default)]
    parent: Option<Digest>,
}

pub(crate) struct Lineage {
    parent: HashMap<Digest, Digest>,
    children: HashMap<Digest, usize>,
}

impl Lineage {
    /// The tree of `images`; a parent that is not stored is no parent.
    pub(crate) fn of(images: &[ImageRecord]) -> Lineage {
        let stored: HashSet<&Digest> = images.iter().map(|i| &i.id).collect();
        let mut lineage = Lineage {
            parent: HashMap::new(),
            children: HashMap::new(),
        };
        for image in images {
            let Ok(ParentField { parent: Some(p) }) = serde_json::from_slice(&image.config) else {
                continue;
            };
            if stored.contains(&p) && p != image.id {
                *lineage.children.entry(p.clone()).or_default() += 1;
                lineage.parent.insert(image.id.clone(), p);
            }
        }
        lineage
    }

    pub(crate) fn parent(&self, id: &Digest) -> Option<&Digest> {
        self.parent.get(id)
    }

    pub(crate) fn has_children(&self, id: &Digest) -> bool {
        self.children.get(id).is_some_and(|n| *n > 0)
    }

    /// Takes `id` out of the tree (it was deleted) and returns its parent,
    /// which has one child less.
    pub(crate) fn remove(&mut self, id: &Digest) -> Option<Digest> {
        let parent = self.parent.remove(id)?;
        if let Some(n) = self.children.get_mut(&parent) {
            *n = n.saturating_sub(1);
        }
        Some(parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hex: char, parent: Option<char>) -> ImageRecord {
        let config = match parent {
            Some(p) => format!(r#"{{"parent":"sha256:{}"}}"#, p.to_string().repeat(64)),
            None => "{}".to_string(),
        };
        ImageRecord {
            id: id(hex),
            manifest_digest: None,
            manifest_media_type: None,
            index_digest: None,
            size: 0,
            created: None,
            added_at: 0,
            platform: "linux/amd64".into(),
            config: config.into_bytes(),
            layers: Vec::new(),
        }
    }

    fn id(hex: char) -> Digest {
        format!("sha256:{}", hex.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn parents_children_and_removal() {
        // a <- b <- c, a <- d; e names a parent that is not stored.
        let images = [
            record('a', None),
            record('b', Some('a')),
            record('c', Some('b')),
            record('d', Some('a')),
            record('e', Some('f')),
        ];
        let mut l = Lineage::of(&images);
        assert_eq!(l.parent(&id('c')), Some(&id('b')));
        assert_eq!(l.parent(&id('e')), None);
        assert!(l.has_children(&id('a')) && l.has_children(&id('b')));
        assert!(!l.has_children(&id('c')) && !l.has_children(&id('e')));
        assert_eq!(l.remove(&id('c')), Some(id('b')));
        assert!(!l.has_children(&id('b')));
        assert_eq!(l.remove(&id('b')), Some(id('a')));
        assert!(l.has_children(&id('a')), "d is still a's child");
        assert_eq!(l.remove(&id('a')), None);
    }
}
