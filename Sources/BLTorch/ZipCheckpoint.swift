import BLCore
import BLPickle

/// torch >= 1.6 checkpoints: `<prefix>/data.pkl` names storages `('storage', type, key, location, numel)`
/// whose bytes are the members `<prefix>/data/<key>`.
enum ZipCheckpoint {
    /// `bytes` must stay valid while `owner` lives; tensors of stored members keep `owner` alive.
    static func read(_ bytes: UnsafeRawBufferPointer, owner file: AnyObject, data: TensorData = .read) throws -> Value {
        let zip = try ZipArchive(bytes)
        // Everything inflated from this archive together stays within the expansion budget.
        var inflated = 0
        let limit = ExpansionBudget.decompressedLimit(fileSize: bytes.count)
        func member(_ zip: ZipArchive, _ e: ZipEntry, _ file: AnyObject, data: TensorData = .read) throws -> ByteStorage {
            if e.method == 8 {
                inflated = try Checked.add(inflated, e.uncompressedSize, "inflated size of the archive's members")
                guard inflated <= limit else {
                    throw BLError(.format, "zip members inflate to more than \(limit) bytes in all (\(e.name) reaches \(inflated)): more than deflate can expand a \(bytes.count)-byte file (a decompression bomb?)")
                }
            }
            return try ZipCheckpoint.member(zip, e, file, data: data)
        }
        let candidates = zip.entries.filter { e in
            guard e.name.hasSuffix("data.pkl") else { return false }
            let prefix = e.name.dropLast("data.pkl".count)
            return prefix.isEmpty || (prefix.hasSuffix("/") && !prefix.dropLast().contains("/"))
        }
        guard let pkl = candidates.min(by: { $0.name.utf8.count < $1.name.utf8.count }) else {
            throw BLError(.format, "zip archive has no data.pkl: not a torch.save checkpoint")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))

        if let bo = zip.entry(named: prefix + "byteorder") {
            let text = try memberText(zip, bo, file)
            switch text.trimmingWhitespace {
            case "little": break
            case "big": throw BLError(.unsupported, "big-endian checkpoint (byteorder 'big') is not supported")
            default: throw BLError(.format, "byteorder member says '\(text.prefix(20))', expected 'little'")
            }
        }
        if let v = zip.entry(named: prefix + "version") {
            let text = try memberText(zip, v, file).trimmingWhitespace
            guard !text.isEmpty, text.count <= 8, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw BLError(.format, "version member says '\(text.prefix(20))', expected a number")
            }
        }

        let pklStorage = try member(zip, pkl, file)
        let tree = try withExtendedLifetime(pklStorage) { () throws -> PickleTree in
            let t = try Unpickler.read(pklStorage.bytes, name: pkl.name)
            try PickleFile.requireNothingAfter(t, in: pklStorage.bytes, name: pkl.name)
            return t
        }

        var cache: [String: ByteStorage] = [:]
        return try tree.value(maxElements: TorchFile.maxViewElements(bytes.count)) { ref in
            let name = prefix + "data/" + ref.key
            let storage: ByteStorage
            if let s = cache[ref.key] {
                storage = s
            } else {
                guard let e = zip.entry(named: name) else {
                    throw BLError(.format, "storage '\(ref.key)' has no member \(name)")
                }
                storage = try member(zip, e, file, data: data)
                cache[ref.key] = storage
            }
            let (need, o) = ref.numel.multipliedReportingOverflow(by: ref.dtype.byteSize)
            guard !o, need <= storage.count else {
                throw BLError(.format, "storage '\(ref.key)' of \(ref.numel) \(ref.dtype.torchName) elements needs \(need) bytes but \(name) holds \(storage.count)")
            }
            return storage
        }
    }

    /// A small member's bytes as text (at most 64 bytes are looked at).
    static func memberText(_ zip: ZipArchive, _ e: ZipEntry, _ file: AnyObject) throws -> String {
        guard e.uncompressedSize <= 1 << 16 else {
            throw BLError(.format, "zip member \(e.name) of \(e.uncompressedSize) bytes is too large for a text member")
        }
        let s = try member(zip, e, file)
        return withExtendedLifetime(s) { String(decoding: s.bytes.prefix(64), as: UTF8.self) }
    }

    /// A member's bytes: stored members are a slice of the mapping, deflated ones are inflated.
    static func member(_ zip: ZipArchive, _ e: ZipEntry, _ file: AnyObject, data: TensorData = .read) throws -> ByteStorage {
        if e.flags & 1 != 0 {
            throw BLError(.unsupported, "zip member \(e.name) is encrypted")
        }
        let range = try zip.dataRange(e)
        switch e.method {
        case 0:
            guard e.uncompressedSize == e.compressedSize else {
                throw BLError(.format, "stored member \(e.name) has different compressed (\(e.compressedSize)) and uncompressed (\(e.uncompressedSize)) sizes")
            }
            return ByteStorage(slice: UnsafeRawBufferPointer(rebasing: zip.bytes[range]), owner: file)
        case 8 where data == .shapesOnly:
            let input = UnsafeRawBufferPointer(rebasing: zip.bytes[range])
            try Inflate.verify(input, size: e.uncompressedSize, crc: e.crc32, what: "zip member \(e.name)")
            return try ByteStorage.reserved(count: e.uncompressedSize)
        case 8:
            return try Inflate.inflate(UnsafeRawBufferPointer(rebasing: zip.bytes[range]), size: e.uncompressedSize,
                                       crc: e.crc32, what: "zip member \(e.name)")
        default:
            throw BLError(.unsupported, "zip member \(e.name) uses compression method \(e.method) (only stored and deflate are supported)")
        }
    }
}

