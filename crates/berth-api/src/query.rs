//! Query strings of the endpoints berth serves.
//!
//! Parsed with serde_html_form because docker repeats keys for lists
//! (`changes=CMD+x&changes=ENV+y`, `names=a&names=b`), which
//! serde_urlencoded cannot express. Booleans follow docker's `BoolValue`:
//! anything but empty, `0`, `no`, `false` or `none` (any case) is true.
//! Unknown keys are ignored, as docker ignores them.

use berth_errdefs::{ErrorKind, HasKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("invalid query string {query:?}: {reason}")]
    Malformed { query: String, reason: String },
}

impl HasKind for QueryError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Parses a query string (without the `?`) into one of the structs below.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, QueryError> {
    serde_html_form::from_str(query).map_err(|e| QueryError::Malformed {
        query: query.chars().take(200).collect(),
        reason: e.to_string(),
    })
}

/// Writes a query struct as a query string (without the `?`).
pub fn to_string<T: Serialize>(query: &T) -> String {
    serde_html_form::to_string(query).unwrap_or_default()
}

/// docker's `BoolValue`.
pub fn bool_value(s: &str) -> bool {
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    Ok(bool_value(&s))
}

/// An optional integer where an empty value means "not given".
fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer")))
}

fn is_false(b: &bool) -> bool {
    !*b
}

macro_rules! query_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }
    };
}

query_struct!(
    /// `GET /images/json`
    ImageListQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        all: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        filters: Option<String>,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        digests: bool,
        #[serde(rename = "shared-size", deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        shared_size: bool,
    }
);

query_struct!(
    /// `GET /system/df`: `type` (API 1.42), repeated for several of
    /// `container`, `image`, `volume`, `build-cache`.
    DiskUsageQuery {
        #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
        types: Vec<String>,
    }
);

query_struct!(
    /// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
    ImageCreateQuery {
        #[serde(rename = "fromImage", skip_serializing_if = "Option::is_none")]
        from_image: Option<String>,
        #[serde(rename = "fromSrc", skip_serializing_if = "Option::is_none")]
        from_src: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        repo: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(rename = "changes", skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
    }
);

query_struct!(
    /// `POST /commit`: a container's changes as a new image.
    CommitQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        container: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        repo: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        author: Option<String>,
        /// docker's BoolValueOrDefault: absent or empty means true.
        #[serde(skip_serializing_if = "Option::is_none")]
        pause: Option<String>,
        #[serde(rename = "changes", skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
    }
);

query_struct!(
    /// `POST /build`: a Dockerfile build of the tar context in the body.
    /// Booleans stay strings (docker's BoolValue, see [`bool_value`]).
    BuildQuery {
        #[serde(rename = "t", skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
        /// Repeated by some clients (docker-py 7 sends the path, then the
        /// text): the first wins, as Go's `FormValue`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        dockerfile: Vec<String>,
        /// JSON object of build args.
        #[serde(skip_serializing_if = "Option::is_none")]
        buildargs: Option<String>,
        /// JSON object of labels for the final image.
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        nocache: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        q: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        networkmode: Option<String>,
        /// `host:ip` entries, repeated or comma-separated.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        extrahosts: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        shmsize: Option<String>,
        /// JSON array of images whose build cache may be used.
        #[serde(skip_serializing_if = "Option::is_none")]
        cachefrom: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
    }
);

impl CommitQuery {
    /// Whether to pause a running container while its changes are read.
    pub fn pause(&self) -> bool {
        self.pause
            .as_deref()
            .filter(|p| !p.is_empty())
            .is_none_or(bool_value)
    }
}

query_struct!(
    /// `POST /images/{name}/tag`
    ImageTagQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        repo: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    }
);

query_struct!(
    /// `DELETE /images/{name}`
    ImageDeleteQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        force: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        noprune: bool,
    }
);

query_struct!(
    /// `POST /images/{name}/push`
    ImagePushQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    }
);

query_struct!(
    /// `GET /images/get`
    ImageGetQuery {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
    }
);

query_struct!(
    /// `POST /images/load`
    ImageLoadQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        quiet: bool,
    }
);

query_struct!(
    /// `POST /images/prune`, `/containers/prune`, ...
    PruneQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        filters: Option<String>,
    }
);

query_struct!(
    /// `POST /plugins/create`
    PluginCreateQuery {
        name: String,
    }
);

query_struct!(
    /// `GET /plugins/privileges`
    PluginPrivilegesQuery {
        remote: String,
    }
);

query_struct!(
    /// `GET /images/search`
    ImageSearchQuery {
        term: String,
        #[serde(deserialize_with = "de_opt_i64", skip_serializing_if = "Option::is_none")]
        limit: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        filters: Option<String>,
    }
);

query_struct!(
    /// `POST /containers/create`
    ContainerCreateQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
    }
);

query_struct!(
    /// `GET /containers/json`
    ContainerListQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        all: bool,
        #[serde(deserialize_with = "de_opt_i64", skip_serializing_if = "Option::is_none")]
        limit: Option<i64>,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        size: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        filters: Option<String>,
    }
);

query_struct!(
    /// `POST /containers/{id}/attach` (and `/attach/ws`).
    ContainerAttachQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        stream: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        logs: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        stdin: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        stdout: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        stderr: bool,
        #[serde(rename = "detachKeys", skip_serializing_if = "Option::is_none")]
        detach_keys: Option<String>,
    }
);

query_struct!(
    /// `POST /containers/{id}/resize` and `POST /exec/{id}/resize`.
    ResizeQuery {
        #[serde(deserialize_with = "de_opt_i64", skip_serializing_if = "Option::is_none")]
        h: Option<i64>,
        #[serde(deserialize_with = "de_opt_i64", skip_serializing_if = "Option::is_none")]
        w: Option<i64>,
    }
);

query_struct!(
    /// `GET /containers/{id}/top`.
    ContainerTopQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        ps_args: Option<String>,
    }
);

query_struct!(
    /// `GET /containers/{id}/stats`: `stream` defaults to true, so it is kept as given.
    ContainerStatsQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
        #[serde(rename = "one-shot", deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        one_shot: bool,
    }
);

query_struct!(
    /// `POST /containers/{id}/rename`.
    ContainerRenameQuery {
        name: String,
    }
);

query_struct!(
    /// `GET /containers/{id}/json`.
    ContainerInspectQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        size: bool,
    }
);

query_struct!(
    /// `POST /containers/{id}/wait`
    ContainerWaitQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
    }
);

query_struct!(
    /// `GET /containers/{id}/logs`
    ContainerLogsQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        follow: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        stdout: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        stderr: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        timestamps: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        tail: Option<String>,
    }
);

query_struct!(
    /// `DELETE /containers/{id}`
    ContainerDeleteQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        v: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        force: bool,
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        link: bool,
    }
);

query_struct!(
    /// `DELETE /volumes/{name}` and `DELETE /plugins/{name}`
    VolumeDeleteQuery {
        #[serde(deserialize_with = "de_bool", skip_serializing_if = "is_false")]
        force: bool,
    }
);

query_struct!(
    /// `POST /containers/{id}/stop` and `/restart`
    ContainerStopQuery {
        #[serde(deserialize_with = "de_opt_i64", skip_serializing_if = "Option::is_none")]
        t: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
    }
);

query_struct!(
    /// `POST /containers/{id}/kill`
    ContainerKillQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
    }
);

query_struct!(
    /// `GET /events`
    EventsQuery {
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        filters: Option<String>,
    }
);

query_struct!(
    /// `GET /system/df`
    SystemDfQuery {
        #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
        types: Vec<String>,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_booleans() {
        for t in ["1", "true", "True", "yes", "x"] {
            let q: ImageListQuery = parse(&format!("all={t}")).unwrap();
            assert!(q.all, "{t}");
        }
        for f in ["", "0", "false", "FALSE", "no", "none"] {
            let q: ImageListQuery = parse(&format!("all={f}")).unwrap();
            assert!(!q.all, "{f}");
        }
        assert!(!parse::<ImageListQuery>("").unwrap().all);
    }

    #[test]
    fn repeated_keys_and_renames() {
        let q: ImageCreateQuery =
            parse("fromSrc=-&repo=busybox&tag=v1&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3Db")
                .unwrap();
        assert_eq!(q.from_src.as_deref(), Some("-"));
        assert_eq!(q.repo.as_deref(), Some("busybox"));
        assert_eq!(q.changes, ["CMD [\"sh\"]", "ENV A=b"]);
        let back: ImageCreateQuery = parse(&to_string(&q)).unwrap();
        assert_eq!(back, q);
        let g: ImageGetQuery = parse("names=a&names=b%2Fc").unwrap();
        assert_eq!(g.names, ["a", "b/c"]);
        let l: ImageListQuery = parse("shared-size=1&unknown=3").unwrap();
        assert!(l.shared_size);
    }

    #[test]
    fn integers_checked() {
        let s: ContainerStopQuery = parse("t=5").unwrap();
        assert_eq!(s.t, Some(5));
        assert_eq!(parse::<ContainerStopQuery>("t=").unwrap().t, None);
        let err = parse::<ContainerStopQuery>("t=soon").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        assert_eq!(err.kind().http_status(), 400);
    }
}
