/// Every pickle opcode of protocols 0 to 5. The reader only ever acts on these; any other byte
/// is a format error, so an unknown opcode can never be skipped over or guessed at.
enum Opcode: UInt8 {
    // protocol 0 and 1
    case mark = 0x28            // (
    case stop = 0x2e            // .
    case pop = 0x30             // 0
    case popMark = 0x31         // 1
    case dup = 0x32             // 2
    case float = 0x46           // F  text float
    case int = 0x49             // I  text int (I01 / I00 are True / False)
    case binInt = 0x4a          // J  int32
    case binInt1 = 0x4b         // K  uint8
    case long = 0x4c            // L  text long
    case binInt2 = 0x4d         // M  uint16
    case none = 0x4e            // N
    case persId = 0x50          // P  text persistent id
    case binPersId = 0x51       // Q
    case reduce = 0x52          // R
    case string = 0x53          // S  quoted text string
    case binString = 0x54       // T  int32 length
    case shortBinString = 0x55  // U  uint8 length
    case unicode = 0x56         // V  raw-unicode-escape text
    case binUnicode = 0x58      // X  uint32 length, UTF-8
    case emptyList = 0x5d       // ]
    case append = 0x61          // a
    case build = 0x62           // b
    case global = 0x63          // c  module\nname\n
    case dict = 0x64            // d
    case appends = 0x65         // e
    case get = 0x67             // g
    case binGet = 0x68          // h
    case inst = 0x69            // i
    case longBinGet = 0x6a      // j
    case list = 0x6c            // l
    case obj = 0x6f             // o
    case put = 0x70             // p
    case binPut = 0x71          // q
    case longBinPut = 0x72      // r
    case setItem = 0x73         // s
    case tuple = 0x74           // t
    case setItems = 0x75        // u
    case emptyDict = 0x7d       // }
    case emptyTuple = 0x29      // )
    case binFloat = 0x47        // G  big-endian float64
    // protocol 2
    case proto = 0x80
    case newObj = 0x81
    case ext1 = 0x82
    case ext2 = 0x83
    case ext4 = 0x84
    case tuple1 = 0x85
    case tuple2 = 0x86
    case tuple3 = 0x87
    case newTrue = 0x88
    case newFalse = 0x89
    case long1 = 0x8a
    case long4 = 0x8b
    // protocol 3
    case binBytes = 0x42        // B
    case shortBinBytes = 0x43   // C
    // protocol 4
    case shortBinUnicode = 0x8c
    case binUnicode8 = 0x8d
    case binBytes8 = 0x8e
    case emptySet = 0x8f
    case addItems = 0x90
    case frozenSet = 0x91
    case newObjEx = 0x92
    case stackGlobal = 0x93
    case memoize = 0x94
    case frame = 0x95
    // protocol 5
    case byteArray8 = 0x96
    case nextBuffer = 0x97
    case readonlyBuffer = 0x98
}
