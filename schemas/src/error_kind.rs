//! What kind of failure an error is, in terms every front door understands. Each crate's error
//! says what happened in its own words and answers `kind()`; the CLI maps a kind to an exit
//! code and the HTTP surfaces to a status, each in one place.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is malformed: a value that does not parse, a missing argument, a
    /// limit exceeded. Nothing was looked at or changed.
    BadInput,
    /// A business rule said no (wrong state, amount over what remains, file refused as a whole).
    Refused,
    /// The thing named does not exist (or is not visible to whoever asked).
    NotFound,
    /// It was done before or is being done by someone else (a file imported twice).
    Conflict,
    /// Whoever asked may not do this.
    Forbidden,
    /// Something outside is unreachable or refusing for now (channel, bureau): try again later.
    Unavailable,
    /// Our own fault: database, configuration, a bug.
    Internal,
}

impl ErrorKind {
    /// The CLI's exit code: 2 for a usage error — bad input, or a name or id given that names
    /// nothing (`jobs history --job no-such-job`, `callbacks retry 999999`) —, 1 for every other
    /// failure.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BadInput | ErrorKind::NotFound => 2,
            _ => 1,
        }
    }

    /// The HTTP status a web surface answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 400,
            ErrorKind::Refused => 422,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_and_unknown_names_are_usage_errors() {
        let all = [
            ErrorKind::BadInput,
            ErrorKind::Refused,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Forbidden,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        let exits: Vec<u8> = all.iter().map(|k| k.exit_code()).collect();
        assert_eq!(exits, [2, 1, 2, 1, 1, 1, 1]);
        let statuses: Vec<u16> = all.iter().map(|k| k.http_status()).collect();
        assert_eq!(statuses, [400, 422, 404, 409, 403, 503, 500]);
    }
}
