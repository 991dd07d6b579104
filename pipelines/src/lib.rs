//! Batch pipelines: the Excel import (later: invoicing, reissue, red-flush, export).

pub mod import;
