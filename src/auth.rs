//! Who may do what: the two roles, their tokens, the one table of permissions, and the
//! state directory where a generated operator token is kept.
//!
//! * A *viewer* watches and listens. Viewing is open unless `viewer_token` is set.
//! * An *operator* also drives, talks back, pushes WHIP and uses the REST API's lists and
//!   changes. `operator_token` is generated on first start when it is not set.
//!
//! Tokens arrive as `Authorization: Bearer <token>` and are compared in constant time.
//! They never reach a log, except for the one line that hands a freshly generated
//! operator token to the person who installed robocast.
//!
//! Touches neither GStreamer nor webrtc-rs; [`crate::http`] asks [`Tokens::check`] who a
//! request is, and [`crate::control`]'s seats ask [`allows`] what a session may do.

use std::path::{Path, PathBuf};

use serde::Serialize;
use subtle::ConstantTimeEq;

/// What a request or a session may do. `Viewer < Operator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Viewer,
    Operator,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Viewer => "viewer",
            Access::Operator => "operator",
        }
    }
}

/// Everything a role decides. The one table of who may do what is [`allows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Receive the robot's camera and microphone (`/api/connect`, `/whep`), read the
    /// status and the page's configuration (TURN credentials included).
    Watch,
    /// Hold the driver seat: send `control` messages the robot obeys.
    Drive,
    /// Send messages to the robot's programs, on any data channel.
    Message,
    /// Hold the talker seat: be played on the speaker and display; push WHIP.
    Talk,
    /// List every session; end or change someone else's.
    ManageSessions,
    /// End or trickle a session that was opened with `owner`'s access (its `Location`).
    UseOwnSession { owner: Access },
}

/// The permission table.
pub fn allows(access: Access, action: Action) -> bool {
    match action {
        Action::Watch => true,
        Action::Drive | Action::Message | Action::Talk | Action::ManageSessions => access == Access::Operator,
        // A session's id is unguessable, but the driver's and the talker's are announced
        // to every page: a viewer may end its own (viewer) session, never an operator's.
        Action::UseOwnSession { owner } => access >= owner,
    }
}

/// Why a request has no access at all (`401`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` where viewing needs a token.
    Missing,
    /// A bearer token that is neither the viewer's nor the operator's.
    Wrong,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
}

/// A secret token. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token given by the user; too short or with characters a header cannot carry is
    /// an error that says so.
    pub fn new(text: &str) -> Result<Token, String> {
        let text = text.trim();
        if text.len() < MIN_TOKEN_LEN {
            return Err(format!("a token needs at least {MIN_TOKEN_LEN} characters"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token may hold only printable ASCII, no spaces".into());
        }
        Ok(Token(text.to_owned()))
    }

    /// 32 random bytes as 64 hex digits.
    pub fn generate() -> Result<Token, getrandom::Error> {
        Ok(Token(random_hex::<32>()?))
    }

    /// The secret itself, for the one place that must show it (the first-start log line)
    /// and for clients in tests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

/// The shortest token robocast accepts.
pub const MIN_TOKEN_LEN: usize = 16;

/// `N` bytes from the operating system's CSPRNG, as hex.
pub fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The tokens a running robocast checks.
#[derive(Clone, Debug)]
pub struct Tokens {
    viewer: Option<Token>,
    operator: Token,
}

impl Tokens {
    pub fn new(viewer: Option<Token>, operator: Token) -> Tokens {
        Tokens { viewer, operator }
    }

    /// Whether watching needs a token.
    pub fn viewing_is_open(&self) -> bool {
        self.viewer.is_none()
    }

    pub fn operator(&self) -> &Token {
        &self.operator
    }

    /// Who a request is, from its `Authorization` header (`None`: no header).
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<Access, Denied> {
        let Some(header) = authorization else {
            return if self.viewing_is_open() { Ok(Access::Viewer) } else { Err(Denied::Missing) };
        };
        let given = bearer(header).ok_or(Denied::Malformed)?;
        // Both comparisons always run, so the time taken does not say which one matched.
        let operator = self.operator.matches(given);
        let viewer = self.viewer.as_ref().is_some_and(|v| v.matches(given));
        match (operator, viewer) {
            (true, _) => Ok(Access::Operator),
            (false, true) => Ok(Access::Viewer),
            (false, false) => Err(Denied::Wrong),
        }
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Where robocast keeps what it generates (the operator token; later the certificate):
/// systemd's `StateDirectory`, else `$XDG_STATE_HOME/robocast`, else
/// `~/.local/state/robocast`.
pub fn default_state_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dirs) = std::env::var("STATE_DIRECTORY").ok().filter(|v| !v.is_empty()) {
        // systemd lists several directories separated by `:`; robocast asks for one.
        return dirs.split(':').next().map(PathBuf::from);
    }
    var("XDG_STATE_HOME")
        .map(|d| d.join("robocast"))
        .or_else(|| var("HOME").map(|h| h.join(".local/state/robocast")))
}

/// The operator token file inside the state directory.
pub const OPERATOR_TOKEN_FILE: &str = "operator-token";

/// How the operator token was found.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    /// Set in the configuration or on the command line.
    Configured,
    /// Read from the state directory, generated by an earlier start.
    Kept(PathBuf),
    /// Generated now and written to the state directory.
    Generated(PathBuf),
    /// Generated now and kept only in memory (no state directory).
    Ephemeral,
}

/// The operator token: the configured one, else the one kept in `state_dir`, else a new
/// one written there (readable by robocast's user only).
pub fn operator_token(
    configured: Option<&Token>,
    state_dir: Option<&Path>,
) -> Result<(Token, Origin), StateError> {
    if let Some(token) = configured {
        return Ok((token.clone(), Origin::Configured));
    }
    let Some(dir) = state_dir else {
        return Ok((Token::generate().map_err(StateError::Random)?, Origin::Ephemeral));
    };
    let path = dir.join(OPERATOR_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token =
                Token::new(&text).map_err(|problem| StateError::BadToken { path: path.clone(), problem })?;
            return Ok((token, Origin::Kept(path)));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(StateError::Io { path, source }),
    }
    let token = Token::generate().map_err(StateError::Random)?;
    write_private(dir, &path, token.expose().as_bytes())?;
    Ok((token, Origin::Generated(path)))
}

/// Writes `bytes` to `path` (mode 0600) in `dir` (created 0700 when missing), through a
/// temporary file, so a crash never leaves half a token.
pub fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Io { path, source }
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    let temporary = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io(&temporary))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io(path))
}

/// The state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} does not hold a usable token ({problem})")]
    BadToken { path: PathBuf, problem: String },
    #[error("the operating system gave no random bytes: {0}")]
    Random(getrandom::Error),
}

impl StateError {
    pub fn hint(&self) -> &'static str {
        match self {
            StateError::Io { .. } => {
                "give robocast a writable --state-dir (the service's is /var/lib/robocast), or set operator_token"
            }
            StateError::BadToken { .. } => {
                "delete the file to have a new token generated, or set operator_token"
            }
            StateError::Random(_) => "robocast needs the kernel's random number generator (getrandom)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> Token {
        Token::new(s).expect("valid token")
    }

    #[test]
    fn roles_come_from_the_bearer_token() {
        let open = Tokens::new(None, token("operator-secret-123"));
        assert_eq!(open.check(None), Ok(Access::Viewer), "viewing is open without a viewer token");
        assert_eq!(open.check(Some(b"Bearer operator-secret-123")), Ok(Access::Operator));
        assert_eq!(open.check(Some(b"bearer  operator-secret-123 ")), Ok(Access::Operator));
        assert_eq!(open.check(Some(b"Bearer operator-secret-12")), Err(Denied::Wrong));
        assert_eq!(open.check(Some(b"Basic b3A6cHc=")), Err(Denied::Malformed));
        assert_eq!(open.check(Some(b"Bearer")), Err(Denied::Malformed));
        assert_eq!(open.check(Some(b"Bearerx operator-secret-123")), Err(Denied::Malformed));

        let closed = Tokens::new(Some(token("viewer-secret-4567")), token("operator-secret-123"));
        assert_eq!(closed.check(None), Err(Denied::Missing));
        assert_eq!(closed.check(Some(b"Bearer viewer-secret-4567")), Ok(Access::Viewer));
        assert_eq!(closed.check(Some(b"Bearer operator-secret-123")), Ok(Access::Operator));
    }

    #[test]
    fn the_table_gives_operators_the_seats_and_viewers_their_own_sessions() {
        use Access::*;
        for action in [Action::Drive, Action::Message, Action::Talk, Action::ManageSessions] {
            assert!(allows(Operator, action) && !allows(Viewer, action), "{action:?}");
        }
        assert!(allows(Viewer, Action::Watch));
        assert!(allows(Viewer, Action::UseOwnSession { owner: Viewer }));
        assert!(!allows(Viewer, Action::UseOwnSession { owner: Operator }));
        assert!(allows(Operator, Action::UseOwnSession { owner: Viewer }));
    }

    #[test]
    fn short_or_unprintable_tokens_are_refused() {
        assert!(Token::new("short").is_err());
        assert!(Token::new("has a space in it!!").is_err());
        assert!(format!("{:?}", token("operator-secret-123")).contains("hidden"));
        let a = Token::generate().expect("random");
        let b = Token::generate().expect("random");
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn a_generated_token_is_kept_private_and_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("robocast-auth-{}", random_hex::<8>().expect("random")));
        let state = dir.join("state");
        let (first, origin) = operator_token(None, Some(&state)).expect("generated");
        let path = state.join(OPERATOR_TOKEN_FILE);
        assert_eq!(origin, Origin::Generated(path.clone()));
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(&state).expect("dir").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let (again, origin) = operator_token(None, Some(&state)).expect("kept");
        assert_eq!((again, origin), (first.clone(), Origin::Kept(path.clone())));
        let configured = token("configured-token-99");
        assert_eq!(
            operator_token(Some(&configured), Some(&state)).expect("configured").1,
            Origin::Configured
        );
        std::fs::write(&path, "tiny").expect("write");
        let error = operator_token(None, Some(&state)).expect_err("too short");
        assert!(error.to_string().contains("operator-token") && error.hint().contains("delete"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
