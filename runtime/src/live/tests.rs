//! The live runtime's unit tests: the committed-length object, the output file and a followed
//! input file, each against a temporary directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::checkpoint::{decode_output_len, encode_output_len};
use super::feed::FileFeed;
use super::options::LiveError;
use super::output::OutputFile;
use eddy_engine::lines::LineFeed;
use eddy_engine::Record;

#[test]
fn the_committed_length_reads_back_and_any_flipped_bit_is_caught() {
    let bytes = encode_output_len(123_456_789);
    assert_eq!(decode_output_len(&bytes), Ok(123_456_789));
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(decode_output_len(&flipped).is_err(), "bit {bit} flipped unnoticed");
    }
    assert!(decode_output_len(&bytes[..19]).is_err());
}

fn record(line: &str) -> Record<String> {
    Record::new(0, line.to_string())
}

#[test]
fn the_output_file_appends_whole_lines_and_truncates_back_to_a_committed_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let output = OutputFile::open(&path).unwrap();
    output.append(&[record("a"), record("bb")]);
    let committed = output.len();
    assert_eq!(committed, 5);
    output.append(&[record("ccc")]);
    // A torn write after the commit point, as a crash would leave it.
    fs_append(&path, b"{\"torn");
    let reopened = OutputFile::open(&path).unwrap();
    reopened.truncate(committed, 7).unwrap();
    reopened.append(&[record("d")]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nbb\nd\n");
    assert!(matches!(
        reopened.truncate(100, 8),
        Err(LiveError::OutputShrank {
            checkpoint: 8,
            committed: 100,
            actual: 7,
            ..
        })
    ));
}

#[test]
fn a_followed_file_hands_out_complete_lines_with_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, "a\n\nb\nhalf").unwrap();
    let feed = FileFeed::open(&path).unwrap();
    let mut lines = Vec::new();
    feed.poll_lines(&mut lines);
    assert_eq!(lines, vec![(1, "a".to_string()), (3, "b".to_string())]);
    lines.clear();
    feed.poll_lines(&mut lines);
    assert!(lines.is_empty(), "a line without its break waits: {lines:?}");
    fs_append(&path, b" done\nc\n");
    feed.poll_lines(&mut lines);
    assert_eq!(lines, vec![(4, "half done".to_string()), (5, "c".to_string())]);
    feed.report_skipped(4, "skipped".into());
    assert_eq!(feed.skipped(), 1);
    assert!(feed.take_error().is_none(), "a skipped line is no error");
    feed.report_error(5, "bad".into());
    let error = feed.take_error().expect("the reported error").to_string();
    assert!(error.ends_with("in.jsonl:5: bad"), "{error}");
}

fn fs_append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}
