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

    /// Reads the one pickle `bytes` hold (errors name it `name`).
    ///
    /// A file of one pickle ends at its STOP opcode. Bytes after it are refused: other loaders go
    /// on reading them as further pickles (a benign pickle can hide a second one that calls
    /// anything), so every following pickle is first read with the same allowlist, to name a
    /// refused global if one is there, and the file is refused in any case.
    package static func read(_ bytes: UnsafeRawBufferPointer, name: String) throws -> Value {
        let first = try Unpickler.read(bytes, name: name)
        try requireNothingAfter(first, in: bytes, name: name)
        return try first.value()
    }

    /// Refuses bytes after the STOP of `first` (a pickle read from the start of `bytes`), naming a
    /// refused global when they hold pickles that name one.
    package static func requireNothingAfter(_ first: PickleTree, in bytes: UnsafeRawBufferPointer, name: String) throws {
        var pos = first.end
        var count = 1
        while pos < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[pos...])
            let next: PickleTree
            do {
                next = try Unpickler.read(rest, name: "\(name) (pickle \(count + 1), after the first one's STOP)", baseOffset: pos)
            } catch let e as BLError where e.kind == .refused {
                throw e
            } catch {
                throw BLError(.format, "\(bytes.count - first.end) bytes follow the pickle's STOP opcode and are not a pickle; a pickle file holds one pickle",
                              location: "\(name) at byte \(first.end)")
            }
            pos += next.end
            count += 1
        }
        if count > 1 {
            throw BLError(.refused, "the file holds \(count) pickles, one after the other: a pickle file holds one (loaders that read on would run the later ones); refused",
                          location: "\(name) at byte \(first.end)")
        }
    }

    /// True when the bytes start like a protocol 2 to 5 pickle (`0x80 <protocol>`), or like a
    /// protocol 0 or 1 pickle (no header: an opcode that can begin one, and STOP as the last byte).
    package static func looksLikePickle(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.count >= 3 && bytes[0] == 0x80 && (2...5).contains(bytes[1]) { return true }
        guard bytes.count >= 2, bytes[bytes.count - 1] == 0x2e else { return false }
        // MARK ( EMPTY_DICT } EMPTY_LIST ] EMPTY_TUPLE ) GLOBAL c INST i NONE N INT I LONG L FLOAT F
        // STRING S UNICODE V BININT J BININT1 K BININT2 M BINFLOAT G BINSTRING T SHORT_BINSTRING U
        // BINUNICODE X NEWTRUE/NEWFALSE are protocol 2; PERSID P
        return Array("(}]).ciNILFSVJKMGTUXP".utf8).contains(bytes[0])
    }
}
