import BLCore
import BLPickle

/// The two containers `torch.save` has written.
package enum TorchFormat: String, Sendable {
    /// torch >= 1.6: a zip archive with `<prefix>/data.pkl` and one member per storage.
    case zip
    /// torch < 1.6: consecutive pickles followed by the raw storages.
    case legacy
}

/// Whether a reader produces the tensors' bytes or only their descriptions.
package enum TensorData: Sendable {
    /// Every tensor readable (deflated members inflated).
    case read
    /// Shapes, dtypes and strides only, for listing (`inspect`): deflated members are checked by
    /// inflating them through a small window (sizes and CRC-32), never held in memory; the
    /// tensors' storages must not be read.
    case shapesOnly
}

/// A PyTorch checkpoint read safely: its object tree with tensors that point into the mapped file
/// (stored zip members and legacy storages are not copied; deflated members are inflated once).
package struct TorchFile: Sendable {
    package let format: TorchFormat
    /// The unpickled object tree, tensors as `.tensor`.
    package let root: Value
    package let file: MappedFile

    /// The bytes start with a zip local header (or an empty archive's end record).
    package static func looksLikeZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4b else { return false }
        return (bytes[2] == 0x03 && bytes[3] == 0x04) || (bytes[2] == 0x05 && bytes[3] == 0x06)
    }

    /// The bytes start with a pickle of torch's legacy magic number 0x1950a86a20f9469cfc6c.
    package static func looksLikeLegacy(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let magic: [UInt8] = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        guard bytes.count >= 2 + magic.count, bytes[0] == 0x80, (2...5).contains(bytes[1]) else { return false }
        return bytes[2..<(2 + magic.count)].elementsEqual(magic)
    }

    package static func load(path: String, data: TensorData = .read) throws -> TorchFile {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let e as BLError { throw e.inFile(path) }
        return try load(file: file, data: data)
    }

    package static func load(file: MappedFile, data: TensorData = .read) throws -> TorchFile {
        do {
            let (format, root) = try read(file.bytes, owner: file, data: data)
            return TorchFile(format: format, root: root, file: file)
        } catch let e as BLError {
            throw e.inFile(file.path)
        }
    }

    /// Largest logical element count accepted for one tensor view of a container of `fileSize` bytes.
    static func maxViewElements(_ fileSize: Int) -> Int {
        let (m, o) = fileSize.multipliedReportingOverflow(by: 64)
        return o ? Int.max : max(1 << 24, m)
    }

    /// Reads a checkpoint from bytes that stay valid while `owner` lives (tensors keep `owner` alive).
    package static func read(_ bytes: UnsafeRawBufferPointer, owner: AnyObject, data: TensorData = .read) throws -> (TorchFormat, Value) {
        if looksLikeZip(bytes) {
            return (.zip, try ZipCheckpoint.read(bytes, owner: owner, data: data))
        }
        if looksLikeLegacy(bytes) {
            return (.legacy, try LegacyCheckpoint.read(bytes, owner: owner))
        }
        throw BLError(.format, "not a PyTorch checkpoint: neither a zip archive nor a legacy pickle with torch's magic number")
    }
}
