import BLCore
import BLHDF5

/// The reading process's side of `HDF5Isolation`: `blconvert-hdf5-reader --blconvert-hdf5-reader-v2
/// FILE` reads FILE with libhdf5 and writes the answer (`HDF5Wire`) to stdout.
package enum HDF5Server {
    /// Serves one read as the command line asks and exits: status 0 after an answer (the contents
    /// or the error libhdf5 reported), 2 when the answer could not be written, 64 for a command
    /// line that is not a read request (a reader of another version is asked for one).
    package static func main(arguments: [String] = CommandLine.arguments) -> Never {
        guard arguments.count == 3, arguments[1] == HDF5Isolation.readerArgument else {
            let usage = "usage: \(HDF5Isolation.readerName) \(HDF5Isolation.readerArgument) FILE\n"
                + "(started by blconvert to read HDF5 files in a separate process)\n"
            _ = usage.withCString { write(2, $0, strlen($0)) }
            _exit(64)
        }
        let result: Result<HDF5Contents, BLError>
        do {
            result = .success(try HDF5Library.withLock { try HDF5File.readLocked(path: arguments[2]) })
        } catch let e as BLError {
            result = .failure(e)
        } catch {
            result = .failure(BLError(.format, "\(error)"))
        }
        var out = HDF5Wire.Writer(fd: 1)
        out.answer(result)
        _exit(out.failed ? 2 : 0)
    }
}
