//! Reading a file on its own thread, ahead of the writing.
//!
//! Decoding and validating rows is CPU work of the client, and so is most
//! of what SQLite does; on PostgreSQL the database works in its own
//! process. Read on the import's thread, the two take turns. [`ReadAhead`]
//! reads on a thread of its own, a few batches ahead, so that the rows of
//! the next chunk are ready when the last one is written: on two cores
//! the import then costs about the larger of the two, not their sum.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rapport_interop::csv::RowError;

use super::Rows;

/// Rows per message between the threads.
const BATCH: usize = 1024;
/// Messages in flight: how far the reader may run ahead (a few chunks).
const AHEAD: usize = 24;

/// A row as read: valid, or invalid with its cells as written.
enum Read<T> {
    Row(T),
    Invalid(Vec<String>, Vec<RowError>),
}

enum Message<T> {
    Batch(Vec<Read<T>>),
    /// The input is exhausted (a closed channel without it means the
    /// reader panicked).
    End,
}

/// [`Rows`] read ahead on another thread. `raw` is the cells of the last
/// row read when it was invalid (the only rows whose cells are asked for).
pub struct ReadAhead<T> {
    rx: Receiver<Message<T>>,
    batch: std::vec::IntoIter<Read<T>>,
    raw: Vec<String>,
    header: Vec<String>,
    warnings: Vec<String>,
    columns: Vec<&'static str>,
    ended: bool,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> ReadAhead<T> {
    pub fn spawn<R>(mut rows: R) -> Self
    where
        R: Rows<Row = T> + Send + 'static,
    {
        let header = rows.header().to_vec();
        let warnings = rows.warnings().to_vec();
        let columns = rows.columns();
        let (tx, rx) = sync_channel(AHEAD);
        let thread = std::thread::Builder::new()
            .name("import-read".into())
            .spawn(move || read(&mut rows, &tx))
            .ok();
        ReadAhead {
            rx,
            batch: Vec::new().into_iter(),
            raw: Vec::new(),
            header,
            warnings,
            columns,
            ended: thread.is_none(),
            thread,
        }
    }
}

/// The reader's loop: stops at the end of the input, or as soon as the
/// import no longer listens.
fn read<T>(rows: &mut impl Rows<Row = T>, tx: &SyncSender<Message<T>>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut end = false;
        while batch.len() < BATCH {
            match rows.next_row() {
                None => {
                    end = true;
                    break;
                }
                Some(Ok(r)) => batch.push(Read::Row(r)),
                Some(Err(errs)) => batch.push(Read::Invalid(rows.raw().to_vec(), errs)),
            }
        }
        if tx.send(Message::Batch(batch)).is_err() {
            return;
        }
        if end {
            let _ = tx.send(Message::End);
            return;
        }
    }
}

impl<T> Rows for ReadAhead<T> {
    type Row = T;

    fn next_row(&mut self) -> Option<Result<T, Vec<RowError>>> {
        loop {
            match self.batch.next() {
                Some(Read::Row(r)) => {
                    self.raw.clear();
                    return Some(Ok(r));
                }
                Some(Read::Invalid(raw, errs)) => {
                    self.raw = raw;
                    return Some(Err(errs));
                }
                None if self.ended => return None,
                None => match self.rx.recv() {
                    Ok(Message::Batch(b)) => self.batch = b.into_iter(),
                    Ok(Message::End) => self.ended = true,
                    Err(_) => {
                        // The reader died without reaching the end: its
                        // panic is the import's.
                        self.ended = true;
                        if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join) {
                            std::panic::resume_unwind(panic);
                        }
                        panic!("the import's reader stopped before the end of the input");
                    }
                },
            }
        }
    }

    fn raw(&self) -> &[String] {
        &self.raw
    }

    fn header(&self) -> &[String] {
        &self.header
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn columns(&self) -> Vec<&'static str> {
        self.columns.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Listed;

    fn error(row: u64) -> RowError {
        RowError {
            file: "f.csv".into(),
            row,
            column: "amount".into(),
            reason: "not a number".into(),
        }
    }

    #[test]
    fn rows_come_out_in_order_with_the_invalid_ones_and_their_cells() {
        let rows: Vec<Result<u64, Vec<RowError>>> = (0..5000u64)
            .map(|i| {
                if i % 7 == 3 {
                    Err(vec![error(i)])
                } else {
                    Ok(i)
                }
            })
            .collect();
        let mut ahead = ReadAhead::spawn(Listed::new(rows, vec!["name"]));
        assert_eq!(ahead.columns(), vec!["name"]);
        let mut seen = 0;
        while let Some(r) = ahead.next_row() {
            match r {
                Ok(i) => {
                    assert_eq!(i, seen);
                    assert!(ahead.raw().is_empty());
                }
                Err(e) => assert_eq!(e[0].row, seen),
            }
            seen += 1;
        }
        assert_eq!(seen, 5000);
        assert!(ahead.next_row().is_none());
    }

    struct Exploding(u64);

    impl Rows for Exploding {
        type Row = u64;
        fn next_row(&mut self) -> Option<Result<u64, Vec<RowError>>> {
            self.0 += 1;
            assert!(self.0 < 3000, "a broken reader");
            Some(Ok(self.0))
        }
    }

    #[test]
    fn a_reader_that_panics_is_not_taken_for_the_end_of_the_input() {
        let mut ahead = ReadAhead::spawn(Exploding(0));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while ahead.next_row().is_some() {}
        }));
        assert!(outcome.is_err());
    }

    #[test]
    fn an_import_that_stops_listening_stops_the_reader() {
        let rows: Vec<Result<u64, Vec<RowError>>> = (0..1_000_000u64).map(Ok).collect();
        let mut ahead = ReadAhead::spawn(Listed::new(rows, Vec::new()));
        assert_eq!(ahead.next_row().map(Result::ok), Some(Some(0)));
        let thread = ahead.thread.take().unwrap();
        drop(ahead);
        thread.join().unwrap();
    }
}
