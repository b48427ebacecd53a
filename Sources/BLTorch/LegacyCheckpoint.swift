import BLCore
import BLPickle

/// torch < 1.6 checkpoints: five consecutive pickles (magic number, protocol version, system info,
/// the object, the list of storage keys), then for each key in that order an int64 element count
/// and the storage's raw little-endian bytes.
enum LegacyCheckpoint {
    static let magic = "119547037146038801333356"   // 0x1950a86a20f9469cfc6c
    static let protocolVersion: Int64 = 1001

    /// `bytes` must stay valid while `owner` lives; tensors keep `owner` alive.
    static func read(_ bytes: UnsafeRawBufferPointer, owner: AnyObject) throws -> Value {
        var pos = 0
        func next(_ name: String) throws -> PickleTree {
            let t = try Unpickler.read(UnsafeRawBufferPointer(rebasing: bytes[pos...]), name: name, baseOffset: pos)
            pos += t.end
            return t
        }

        guard case .bigInt(let m) = try next("magic number pickle").value(), m == magic else {
            throw BLError(.format, "first pickle is not torch's magic number", location: "at byte 0")
        }
        let versionAt = pos
        guard case .int(let version) = try next("protocol version pickle").value() else {
            throw BLError(.format, "second pickle is not a protocol version number", location: "at byte \(versionAt)")
        }
        guard version == protocolVersion else {
            throw BLError(.unsupported, "legacy protocol version \(version) (only \(protocolVersion) is supported)", location: "at byte \(versionAt)")
        }
        let infoAt = pos
        let info = try next("system info pickle").value()
        guard case .bool(let little)? = info["little_endian"] else {
            throw BLError(.format, "system info pickle has no little_endian flag", location: "at byte \(infoAt)")
        }
        guard little else {
            throw BLError(.unsupported, "checkpoint was written on a big-endian machine", location: "at byte \(infoAt)")
        }

        let tree = try next("object pickle")
        let keysAt = pos
        guard case .list(let keyValues) = try next("storage key list pickle").value() else {
            throw BLError(.format, "storage key list pickle is not a list", location: "at byte \(keysAt)")
        }

        // The element type of each storage comes from the persistent ids that name it.
        var firstRef: [String: StorageRef] = [:]
        for r in tree.storages where firstRef[r.key] == nil { firstRef[r.key] = r }

        var ranges: [String: Range<Int>] = [:]
        for kv in keyValues {
            guard case .string(let key) = kv else {
                throw BLError(.format, "storage key list holds a \(kv.typeName), expected strings", location: "at byte \(keysAt)")
            }
            guard ranges[key] == nil else {
                throw BLError(.format, "storage key '\(key)' listed twice", location: "at byte \(keysAt)")
            }
            guard let ref = firstRef[key] else {
                throw BLError(.format, "storage key '\(key)' is listed but no tensor names it", location: "at byte \(keysAt)")
            }
            var r = ByteReader(bytes, offset: pos, context: "storage '\(key)'")
            let count = try r.i64()
            let es = ref.dtype.byteSize
            guard count >= 0, count <= Int64(r.remaining / es) else {
                throw BLError(.format, "storage '\(key)' claims \(count) elements of \(es) bytes but only \(r.remaining) bytes remain",
                              location: "at byte \(pos)")
            }
            guard Int(count) == ref.numel else {
                throw BLError(.format, "storage '\(key)' holds \(count) elements but the object pickle says \(ref.numel)",
                              location: "at byte \(pos)")
            }
            let start = r.offset
            ranges[key] = start..<(start + Int(count) * es)
            pos = start + Int(count) * es
        }

        var cache: [String: ByteStorage] = [:]
        return try tree.value(maxElements: TorchFile.maxViewElements(bytes.count)) { ref in
            guard let range = ranges[ref.key] else {
                throw BLError(.format, "storage '\(ref.key)' is not in the storage key list")
            }
            var sub = range
            var cacheKey = ref.key
            if let vr = ref.viewByteRange, let vk = ref.viewKey {
                guard vr.upperBound <= range.count else {
                    throw BLError(.format, "view '\(vk)' of storage '\(ref.key)' reaches byte \(vr.upperBound) of \(range.count)")
                }
                sub = (range.lowerBound + vr.lowerBound)..<(range.lowerBound + vr.upperBound)
                cacheKey = ref.key + "/" + vk
            } else if ref.viewKey != nil {
                throw BLError(.format, "view of storage '\(ref.key)' overflows")
            }
            if let s = cache[cacheKey] { return s }
            let s = ByteStorage(slice: UnsafeRawBufferPointer(rebasing: bytes[sub]), owner: owner)
            cache[cacheKey] = s
            return s
        }
    }
}
