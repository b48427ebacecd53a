import BLCore

/// A bare pickle file (`.pkl`) read with the same allowlist as checkpoints. It cannot hold tensor
/// data (no storages without a container), so any tensor in it is an error.
package enum PickleFile {
    /// Reads the file's first pickle into a value tree.
    package static func load(path: String) throws -> Value {
        do {
            let file = try MappedFile(path: path)
            let name = path.split(separator: "/").last.map(String.init) ?? path
            return try withExtendedLifetime(file) { try read(file.bytes, name: name) }
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }

    /// Reads the first pickle in `bytes` (errors name it `name`).
    static func read(_ bytes: UnsafeRawBufferPointer, name: String) throws -> Value {
        try Unpickler.read(bytes, name: name).value()
    }

    /// True when the bytes start like a protocol 2 to 5 pickle (`0x80 <protocol>`).
    package static func looksLikePickle(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 3 && bytes[0] == 0x80 && (2...5).contains(bytes[1])
    }
}
