//! `DuplexPipe`: what a protocol sees of a connection — an input to read, an output to write.

use std::io;

use crate::options::PipeOptions;
use crate::pipe::Pipe;
use crate::reader::PipeReader;
use crate::writer::PipeWriter;

/// Two pipes seen from one side: read the peer's bytes from `input`, write yours to `output`.
#[derive(Debug)]
pub struct DuplexPipe {
    /// Bytes from the other end.
    pub input: PipeReader,
    /// Bytes to the other end.
    pub output: PipeWriter,
}

impl DuplexPipe {
    /// Creates the two ends of a connection: `(transport, application)`. The transport writes
    /// what it receives into the `inbound` pipe, which the application reads; the application
    /// writes into the `outbound` pipe, which the transport sends.
    pub fn pair(
        inbound: PipeOptions,
        outbound: PipeOptions,
    ) -> io::Result<(DuplexPipe, DuplexPipe)> {
        let (inbound_reader, inbound_writer) = Pipe::new(inbound)?;
        let (outbound_reader, outbound_writer) = Pipe::new(outbound)?;
        Ok((
            DuplexPipe {
                input: outbound_reader,
                output: inbound_writer,
            },
            DuplexPipe {
                input: inbound_reader,
                output: outbound_writer,
            },
        ))
    }
}
