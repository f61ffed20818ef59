# periscope — build the BPF objects, their skeletons, the protobuf code and the
# agent; run the tests. `make` builds build/periscope, `make test` runs every test.

BUILD     ?= build
CLANG     ?= clang
CC        := clang
BPFTOOL   ?= bpftool
PROTOC_C  ?= protoc-c
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

WARN      := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS    ?= -O2 -g
CFLAGS    += $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -I$(BUILD) -I$(BUILD)/gen
LDLIBS    := -lbpf -lelf -lz -lprotobuf-c -ljson-c -lpthread -lm
# Extra link flags of one test or fuzzer, by binary name (test-only libraries):
# LDLIBS_<name> := ...
LDLIBS_fuzz_hpack_diff := -lnghttp2
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
PROTOS    := $(wildcard proto/*.proto)
PB_SRCS   := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
USER_SRCS := $(sort $(shell find user -name '*.c'))
MAIN_SRC  := $(filter %/main.c,$(USER_SRCS))
LIB_SRCS  := $(filter-out $(MAIN_SRC),$(USER_SRCS))
UNIT_SRCS := $(sort $(shell find tests/unit -name 'test_*.c'))
FUZZ_SRCS := $(sort $(shell find tests/fuzz -name 'fuzz_*.c'))

LIB_OBJS      := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(PB_SRCS))
ASAN_LIB_OBJS := $(patsubst $(BUILD)/obj/%,$(BUILD)/asan/%,$(LIB_OBJS))
FUZZ_LIB_OBJS := $(patsubst $(BUILD)/obj/%,$(BUILD)/fuzzobj/%,$(LIB_OBJS))
UNIT_BINS     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
ASAN_BINS     := $(patsubst tests/unit/%.c,$(BUILD)/tests-asan/%,$(UNIT_SRCS))
FUZZ_BINS     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all deps test unit unit-asan fuzz fuzz-smoke e2e bench bench-bins clean format run
.SECONDARY:

all: $(BUILD)/periscope

deps:
	@scripts/install-deps.sh

run: deps all
	$(BUILD)/periscope $(ARGS)

$(BUILD)/vmlinux.h:
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(wildcard include/*.h) $(BUILD)/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Iinclude -Ibpf -I$(BUILD) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) -Iproto --c_out=$(BUILD)/gen $<

PB_HDRS := $(PB_SRCS:.c=.h)
DEPFLAGS = -MMD -MP

# Generated headers come first (order-only); -MMD tracks real header use.
# Only the loader includes the BPF skeletons.
LOADER_SRC := $(filter %/loader.c,$(USER_SRCS))
$(foreach d,obj asan fuzzobj,$(patsubst %.c,$(BUILD)/$(d)/%.o,$(LOADER_SRC))): $(SKELS)

$(BUILD)/obj/%.o: %.c | $(PB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -I$(BUILD)/gen -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(PB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/asan/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(SAN_FLAGS) -I$(BUILD)/gen -c $< -o $@

$(BUILD)/fuzzobj/%.o: %.c | $(PB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=fuzzer-no-link,address,undefined $(DEPFLAGS) -c $< -o $@

$(BUILD)/fuzzobj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -I$(BUILD)/gen -c $< -o $@

$(BUILD)/libperiscope.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libperiscope-asan.a: $(ASAN_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libperiscope-fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/periscope: $(patsubst %.c,$(BUILD)/obj/%.o,$(MAIN_SRC)) $(BUILD)/libperiscope.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libperiscope.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libperiscope.a -o $@ $(LDLIBS) $(LDLIBS_$(notdir $*))

$(BUILD)/tests-asan/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libperiscope-asan.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -Itests/unit $< $(BUILD)/libperiscope-asan.a -o $@ $(LDLIBS) $(LDLIBS_$(notdir $*))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libperiscope-fuzz.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=fuzzer,address,undefined $< $(BUILD)/libperiscope-fuzz.a -o $@ $(LDLIBS) $(LDLIBS_$(notdir $*))

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(BUILD)/tests

unit-asan: $(ASAN_BINS)
	@ASAN_OPTIONS=detect_leaks=1 tests/run-unit.sh $(BUILD)/tests-asan

fuzz: $(FUZZ_BINS)
	@tests/run-fuzz.sh $(BUILD)/fuzz $${FUZZ_SECONDS:-60}

fuzz-smoke: $(FUZZ_BINS)
	@tests/run-fuzz.sh $(BUILD)/fuzz $${FUZZ_SECONDS:-10}

e2e: all
	@tests/run-e2e.sh

# Everything, as CI and the README run it.
test:
	@scripts/install-deps.sh --test
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(ASAN_BINS) $(FUZZ_BINS)
	@tests/run-all.sh

# The bystander bench's helpers (bench/bystander/): built for `make bench` only.
BENCH_BINS := $(BUILD)/bench/syscall_loop $(BUILD)/bench/empty_hook $(BUILD)/bench/empty_hook.bpf.o

$(BUILD)/bench/syscall_loop: bench/bystander/syscall_loop.c
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) -std=gnu11 -D_GNU_SOURCE $< -o $@

$(BUILD)/bench/empty_hook: bench/bystander/empty_hook.c
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) -std=gnu11 -D_GNU_SOURCE $< -o $@ -lbpf

$(BUILD)/bench/empty_hook.bpf.o: bench/bystander/empty_hook.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -target bpf -Wall -Werror -I$(BUILD) -c $< -o $@

bench-bins: $(BENCH_BINS)

bench: deps all $(BENCH_BINS)
	@BENCH_BIN_DIR=$(abspath $(BUILD))/bench scripts/bench.sh

format:
	clang-format -i $(shell find user include bpf tests/unit tests/fuzz -name '*.[ch]')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
