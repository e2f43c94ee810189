//! `leadguard report`: what an output stream says, for the people who run the sales floor.
//!
//! Reads leadguard's own outputs (CloudEvents JSON lines as `run` and `replay` write them) and
//! counts the ones that stand: each output id once however often it was delivered, and nothing
//! that a `leadguard.output.withdrawn` retracted, wherever the withdrawal is in the stream.
//!
//! - [`read`]: messages → records (any transport feeds [`read::Collector::push`]; files and stdin
//!   go through [`read::read_lines`]); bad messages are counted with their line number.
//! - [`tally`]: records → the figures ([`Report`]).
//! - [`text`] and [`html`]: the figures as terminal tables, or as one self-contained HTML page
//!   with SVG charts.

pub mod html;
pub mod read;
pub mod tally;
pub mod text;

pub use tally::Report;

use std::io::{self, BufRead};

/// How many rep pairs, repeat offenders and customers a report lists unless told otherwise.
pub const DEFAULT_TOP: usize = 20;

/// Reads a whole stream and counts it. `input` names the stream in the report.
pub fn from_reader(reader: impl BufRead, input: &str, top: usize) -> io::Result<Report> {
    let collector = read::read_lines(reader)?;
    Ok(Report::compute(collector, input, top))
}
