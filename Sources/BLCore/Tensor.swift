/// A strided view of typed elements inside a `ByteStorage`, as PyTorch describes tensors:
/// shape, strides and offset counted in elements. Several tensors may share one storage.
package struct Tensor: Sendable {
    package let dtype: DType
    package let shape: [Int]
    package let strides: [Int]
    /// Offset of element [0, 0, ...] in elements from the start of `storage`.
    package let offset: Int
    package let storage: ByteStorage

    /// Validates that every element the view can reach lies inside the storage, so reads never
    /// go out of bounds whatever a file claims.
    package init(dtype: DType, shape: [Int], strides: [Int]? = nil, offset: Int = 0, storage: ByteStorage) throws {
        let strides = strides ?? Tensor.contiguousStrides(shape)
        guard strides.count == shape.count else {
            throw BLError(.format, "tensor has \(shape.count) dimensions but \(strides.count) strides")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw BLError(.format, "negative size in shape \(shape)")
        }
        guard strides.allSatisfy({ $0 >= 0 }), offset >= 0 else {
            throw BLError(.unsupported, "negative strides or offset are not supported (strides \(strides), offset \(offset))")
        }
        let count = try Tensor.checkedCount(shape)
        if count > 0 {
            let what = "extent of a tensor of shape \(shape), strides \(strides), offset \(offset)"
            var last = offset
            for (n, s) in zip(shape, strides) {
                last = try Checked.add(last, try Checked.multiply(n - 1, s, what), what)
            }
            let endByte = try Checked.multiply(try Checked.add(last, 1, what), dtype.byteSize, what)
            if endByte > storage.count {
                throw BLError(.format, "tensor of shape \(shape), strides \(strides), offset \(offset) reaches element \(last) but its \(dtype.torchName) storage holds \(storage.count / dtype.byteSize)")
            }
        }
        // An empty view reads nothing, wherever it claims to start (torch accepts any offset there).
        let offset = count > 0 ? offset : 0
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.storage = storage
    }

    /// A new contiguous tensor whose bytes are written by `fill`.
    package static func make(dtype: DType, shape: [Int], fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Tensor {
        let n = try checkedCount(shape)
        let storage = try ByteStorage.allocate(count: n * dtype.byteSize, fill: fill)
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    package static func fromFloats(_ values: [Float], shape: [Int]) throws -> Tensor {
        guard try checkedCount(shape) == values.count else {
            throw BLError(.invalidArgument, "\(values.count) values do not fill shape \(shape)")
        }
        return try make(dtype: .float32, shape: shape) { dst in
            values.withUnsafeBytes { src in dst.copyMemory(from: src) }
        }
    }

    package static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc = acc &* max(shape[i], 1)
        }
        return strides
    }

    package static func checkedCount(_ shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            let (m, o) = n.multipliedReportingOverflow(by: d)
            if o || m > (1 << 48) { throw BLError(.format, "shape \(shape) is too large") }
            n = m
        }
        return n
    }

    package var rank: Int { shape.count }
    package var elementCount: Int { shape.reduce(1, *) }
    package var byteCount: Int { elementCount * dtype.byteSize }

    /// Row-major and dense (dimensions of size 1 may carry any stride).
    package var isContiguous: Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// Calls `body` with the logical row-major bytes; no copy when the view is contiguous.
    package func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if isContiguous {
            let start = offset * dtype.byteSize
            return try body(UnsafeRawBufferPointer(rebasing: storage.bytes[start..<(start + byteCount)]))
        }
        let bytes = contiguousBytes()
        return try bytes.withUnsafeBytes { try body($0) }
    }

    /// The logical row-major bytes as a new array.
    package func contiguousBytes() -> [UInt8] {
        let es = dtype.byteSize
        var out = [UInt8](repeating: 0, count: byteCount)
        if isContiguous {
            let start = offset * es
            out.withUnsafeMutableBytes { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage.bytes[start..<(start + byteCount)]))
            }
            return out
        }
        out.withUnsafeMutableBytes { dst in
            var k = 0
            forEachElementOffset { off in
                let src = storage.bytes.baseAddress! + off * es
                (dst.baseAddress! + k * es).copyMemory(from: src, byteCount: es)
                k += 1
            }
        }
        return out
    }

    /// Visits the storage element offset of every element in row-major order.
    package func forEachElementOffset(_ body: (Int) -> Void) {
        let n = elementCount
        if n == 0 { return }
        let r = shape.count
        if r == 0 { body(offset); return }
        var index = [Int](repeating: 0, count: r)
        var off = offset
        for _ in 0..<n {
            body(off)
            var d = r - 1
            while d >= 0 {
                index[d] += 1
                off += strides[d]
                if index[d] < shape[d] { break }
                off -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    @inline(__always)
    package func loadDouble(_ off: Int) -> Double {
        let p = storage.bytes.baseAddress!
        switch dtype {
        case .float64: return p.loadUnaligned(fromByteOffset: off * 8, as: Double.self)
        case .float32: return Double(p.loadUnaligned(fromByteOffset: off * 4, as: Float.self))
        case .float16: return Double(HalfConversion.halfToFloat(p.loadUnaligned(fromByteOffset: off * 2, as: UInt16.self)))
        case .bfloat16: return Double(HalfConversion.bfloat16ToFloat(p.loadUnaligned(fromByteOffset: off * 2, as: UInt16.self)))
        case .int64: return Double(p.loadUnaligned(fromByteOffset: off * 8, as: Int64.self))
        case .int32: return Double(p.loadUnaligned(fromByteOffset: off * 4, as: Int32.self))
        case .int16: return Double(p.loadUnaligned(fromByteOffset: off * 2, as: Int16.self))
        case .int8: return Double(p.loadUnaligned(fromByteOffset: off, as: Int8.self))
        case .uint8: return Double(p.load(fromByteOffset: off, as: UInt8.self))
        case .bool: return p.load(fromByteOffset: off, as: UInt8.self) != 0 ? 1 : 0
        }
    }

    /// Logical values as doubles (exact for every dtype but int64 beyond 2^53).
    package func doubles() -> [Double] {
        var out = [Double]()
        out.reserveCapacity(elementCount)
        forEachElementOffset { out.append(loadDouble($0)) }
        return out
    }

    /// Logical values as int64 (integer and bool dtypes exactly; floats truncated).
    package func int64s() -> [Int64] {
        var out = [Int64]()
        out.reserveCapacity(elementCount)
        let p = storage.bytes.baseAddress
        forEachElementOffset { off in
            switch dtype {
            case .int64: out.append(p!.loadUnaligned(fromByteOffset: off * 8, as: Int64.self))
            default: out.append(Int64(loadDouble(off)))
            }
        }
        return out
    }

    /// Logical values as float32 (converting from any dtype).
    package func floats() -> [Float] {
        if dtype == .float32 && isContiguous {
            return withContiguousBytes { raw in
                guard let base = raw.baseAddress else { return [] }
                // Mapped bytes may sit at any offset: bind them to Float only when aligned.
                if Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                    return Array(raw.bindMemory(to: Float.self))
                }
                return [Float](unsafeUninitializedCapacity: elementCount) { dst, count in
                    if let d = dst.baseAddress { UnsafeMutableRawPointer(d).copyMemory(from: base, byteCount: elementCount * 4) }
                    count = elementCount
                }
            }
        }
        var out = [Float]()
        out.reserveCapacity(elementCount)
        forEachElementOffset { out.append(Float(loadDouble($0))) }
        return out
    }

    /// A contiguous copy converted to `target` (float types round to nearest even). Values are
    /// written straight into the new storage, never through an intermediate array; a contiguous
    /// float32 source converts over its bytes directly (float64 sources round to float32 first).
    package func converted(to target: DType) throws -> Tensor {
        if target == dtype && isContiguous { return self }
        if target == dtype {
            return try Tensor.make(dtype: dtype, shape: shape) { dst in
                withContiguousBytes { src in dst.copyMemory(from: src) }
            }
        }
        guard target.isFloatingPoint else {
            throw BLError(.unsupported, "conversion from \(dtype.torchName) to \(target.torchName) is not supported")
        }
        let n = elementCount
        return try Tensor.make(dtype: target, shape: shape) { dst in
            guard n > 0, let out = dst.baseAddress else { return }
            if dtype == .float32 && isContiguous, let base = storage.bytes.baseAddress {
                Tensor.convertFloats(from: base + offset * 4, to: out, count: n, target: target)
                return
            }
            var i = 0
            forEachElementOffset { off in
                let v = loadDouble(off)
                switch target {
                case .float64: out.storeBytes(of: v, toByteOffset: i * 8, as: Double.self)
                case .float32: out.storeBytes(of: Float(v), toByteOffset: i * 4, as: Float.self)
                case .float16: out.storeBytes(of: HalfConversion.floatToHalf(Float(v)), toByteOffset: i * 2, as: UInt16.self)
                case .bfloat16: out.storeBytes(of: HalfConversion.floatToBFloat16(Float(v)), toByteOffset: i * 2, as: UInt16.self)
                default: break
                }
                i += 1
            }
        }
    }

    /// `count` float32 values at `src` (any alignment) written to `dst` as `target`
    /// (float64, float16 or bfloat16; round to nearest even).
    static func convertFloats(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, count: Int, target: DType) {
        switch target {
        case .float16:
            let d = dst.bindMemory(to: UInt16.self, capacity: count)
            for i in 0..<count {
                d[i] = HalfConversion.floatToHalf(src.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
            }
        case .bfloat16:
            let d = dst.bindMemory(to: UInt16.self, capacity: count)
            for i in 0..<count {
                d[i] = HalfConversion.floatToBFloat16(src.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
            }
        case .float64:
            let d = dst.bindMemory(to: Double.self, capacity: count)
            for i in 0..<count { d[i] = Double(src.loadUnaligned(fromByteOffset: i * 4, as: Float.self)) }
        case .float32:
            dst.copyMemory(from: src, byteCount: count * 4)
        default:
            break
        }
    }
}
