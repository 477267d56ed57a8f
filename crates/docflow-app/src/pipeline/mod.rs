//! The document pipeline's domain: what travels between the functions and what is kept about
//! each document. Pure rules live here; the functions in [`crate::functions`] do the I/O.
//!
//! - [`events`]: `DocumentSubmitted`, `AnalysisCompleted`, the deadline, refine steps.
//! - [`extraction`]: how a document's text was obtained (the status's `extraction`).
//! - [`state`]: the document state record and the rules of fan-in.
//! - [`submission`]: reading `POST /api/documents` (text, files, JSON, multipart, options).
//! - [`intake`]: a submitted file's text and how it was read, or a scan for OCR.
//! - [`correlation`]: the correlation id of a request.
//! - [`chunking`]: splitting long documents on paragraph and sentence boundaries.
//! - [`store`]: payloads, state, index and idempotency keys on the blob seam.
//! - [`webhook`]: callback signatures and the SSRF guard.

pub mod chunking;
pub mod correlation;
pub mod events;
pub mod extraction;
pub mod intake;
pub mod state;
pub mod store;
pub mod submission;
pub mod webhook;
