/// NumPy's legacy global generator (`np.random.seed` / `np.random.choice`), enough of it to
/// reproduce the reference sampler's seeded draws for videos with no more frames than T:
/// MT19937 seeded by `init_genrand`, and `randint` by masked rejection on 32-bit draws.
struct NumpyLegacyRandom {
    private var state = [UInt32](repeating: 0, count: 624)
    private var position = 624

    /// `np.random.seed(seed)` for an integer seed in 0..<2^32.
    init(seed: UInt32) {
        var s = seed
        for i in 0..<624 {
            state[i] = s
            s = 1_812_433_253 &* (s ^ (s >> 30)) &+ UInt32(i + 1)
        }
        position = 624
    }

    private mutating func twist() {
        let upper: UInt32 = 0x8000_0000, lower: UInt32 = 0x7fff_ffff
        for i in 0..<624 {
            let y = (state[i] & upper) | (state[(i + 1) % 624] & lower)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_b0df }
            state[i] = v
        }
        position = 0
    }

    /// The next 32-bit output (MT19937 `genrand_int32`).
    mutating func nextUInt32() -> UInt32 {
        if position >= 624 { twist() }
        var y = state[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// `randint(0, bound)` (legacy, masked): uniform in 0..<bound for 1 <= bound <= 2^32.
    mutating func randint(_ bound: Int) -> Int {
        let range = UInt32(truncatingIfNeeded: bound - 1)
        if range == 0 { return 0 }
        var mask = range
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16
        while true {
            let v = nextUInt32() & mask
            if v <= range { return Int(v) }
        }
    }

    /// `np.random.choice(populationSize, count)` (with replacement, uniform).
    mutating func choice(_ populationSize: Int, count: Int) -> [Int] {
        (0..<count).map { _ in randint(populationSize) }
    }
}
