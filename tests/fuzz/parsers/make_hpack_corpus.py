#!/usr/bin/env python3
# make_hpack_corpus.py — writes the HPACK seed corpora (tests/fuzz/corpus/hpack, hpack_diff) from
# the RFC 7541 Appendix C examples. Usage: make_hpack_corpus.py tests/fuzz/corpus
import os, sys
root = sys.argv[1]
def h(s): return bytes.fromhex(s.replace(" ", ""))
req = [h("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), h("8286 84be 5808 6e6f 2d63 6163 6865"),
       h("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")]
reqh = [h("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), h("8286 84be 5886 a8eb 1064 9cbf"),
        h("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")]
resp = [h("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        h("4803 3330 37c1 c0bf"),
        h("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31")]
resph = [h("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
         h("4883 640e ffc1 c0bf"),
         h("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07")]
c2 = [h("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"), h("040c 2f73 616d 706c 652f 7061 7468"),
      h("1008 7061 7373 776f 7264 0673 6563 7265 74"), h("82")]
def blocks(bs): return b"".join(len(b).to_bytes(2, "big") + b for b in bs)
# a 256-byte table for the response examples: size update first
upd256 = h("3fe1 01")  # 31 + 0x61 + 1*128 = 256
seeds = {
    "c2": [c2[0]] + c2[1:], "c3": req, "c4": reqh,
    "c5": [upd256 + resp[0]] + resp[1:], "c6": [upd256 + resph[0]] + resph[1:],
    "sizes": [h("203f e11f"), h("3f21 4004 6161 6161 0162"), h("7e05 6363 6363 63 be")],
    "bad": [h("82 be"), h("ffff ffff ff0f")],
}
for d, first in (("hpack", 0x03), ("hpack_diff", 0x00)):
    os.makedirs(os.path.join(root, d), exist_ok=True)
    for name, bs in seeds.items():
        with open(os.path.join(root, d, name), "wb") as f:
            f.write(bytes([first]) + blocks(bs))
