/// Element types of every supported container. Raw values are the safetensors names.
package enum DType: String, CaseIterable, Sendable, Codable, Hashable {
    case float64 = "F64"
    case float32 = "F32"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int64 = "I64"
    case int32 = "I32"
    case int16 = "I16"
    case int8 = "I8"
    case uint8 = "U8"
    case bool = "BOOL"

    package var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// PyTorch's name (`torch.float32` -> "float32").
    package var torchName: String {
        switch self {
        case .float64: return "float64"
        case .float32: return "float32"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .int64: return "int64"
        case .int32: return "int32"
        case .int16: return "int16"
        case .int8: return "int8"
        case .uint8: return "uint8"
        case .bool: return "bool"
        }
    }

    package var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16: return true
        default: return false
        }
    }

    /// From a safetensors dtype string ("F32").
    package init?(safetensorsName: String) { self.init(rawValue: safetensorsName) }

    /// From PyTorch's dtype attribute name (`float32`, `float`, `half`, `long`, ...).
    package init?(torchName: String) {
        switch torchName {
        case "float64", "double": self = .float64
        case "float32", "float": self = .float32
        case "float16", "half": self = .float16
        case "bfloat16": self = .bfloat16
        case "int64", "long": self = .int64
        case "int32", "int": self = .int32
        case "int16", "short": self = .int16
        case "int8": self = .int8
        case "uint8": self = .uint8
        case "bool": self = .bool
        default: return nil
        }
    }

    /// From a legacy storage class name (`FloatStorage`, `torch.cuda.HalfStorage` -> float16).
    package init?(storageClass: String) {
        let base = storageClass.split(separator: ".").last.map(String.init) ?? storageClass
        switch base {
        case "DoubleStorage": self = .float64
        case "FloatStorage": self = .float32
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }

    /// Parse a user-facing name: f32, float32, F32, bf16, ...
    package init?(userName: String) {
        switch userName.lowercased() {
        case "f64", "float64", "double": self = .float64
        case "f32", "float32", "float": self = .float32
        case "f16", "float16", "half": self = .float16
        case "bf16", "bfloat16": self = .bfloat16
        case "i64", "int64": self = .int64
        case "i32", "int32": self = .int32
        case "i16", "int16": self = .int16
        case "i8", "int8": self = .int8
        case "u8", "uint8": self = .uint8
        case "bool": self = .bool
        default: return nil
        }
    }
}

/// Bit-exact half and bfloat16 conversions (no reliance on platform Float16 support).
package enum HalfConversion {
    @inline(__always)
    package static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1f)
        let mant = UInt32(h & 0x03ff)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // subnormal: mant * 2^-24
            let v = Float(mant) * (1.0 / 16_777_216.0)
            return sign != 0 ? -v : v
        }
        if exp == 31 {
            return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13))
        }
        return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
    }

    /// Round to nearest even, overflow to infinity, NaN kept NaN.
    @inline(__always)
    package static func floatToHalf(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xff)
        var mant = x & 0x007f_ffff
        if exp == 0xff {
            return sign | 0x7c00 | (mant != 0 ? 0x0200 : 0)
        }
        let e = exp - 127 + 15
        if e >= 31 { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign }
            mant |= 0x0080_0000
            let shift = UInt32(14 - e)
            var half = mant >> shift
            let rem = mant & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (half & 1) == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) { half += 1 }
        return sign | UInt16(truncatingIfNeeded: half)
    }

    @inline(__always)
    package static func bfloat16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Round to nearest even (as PyTorch does), NaN kept NaN.
    @inline(__always)
    package static func floatToBFloat16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(x >> 16) | 0x0040 }
        let lsb = (x >> 16) & 1
        let rounded = x &+ 0x7fff &+ lsb
        return UInt16(rounded >> 16)
    }
}
