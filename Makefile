# cloudconn — PGXS build.  `make && make install`, then `make installcheck`
# against a running cluster (see .ci/run, which does all of it).
#
# The version is written once, here: the control file, the install script's
# name and the User-Agent follow from EXTVERSION.  sql/cloudconn.sql is the
# current version's install script; earlier install scripts and every
# upgrade script are kept in sql/ as they were released.

EXTENSION = cloudconn
EXTVERSION = 0.2.0
MODULE_big = cloudconn
OBJS = \
	src/cloudconn.o \
	src/aws.o \
	src/aws_caller.o \
	src/aws_roles_anywhere.o \
	src/azure.o \
	src/callback_buffer.o \
	src/ci_digest.o \
	src/ci_foreign_keys.o \
	src/connector_run.o \
	src/digitalocean.o \
	src/discovery.o \
	src/dispatch.o \
	src/guc.o \
	src/history.o \
	src/http.o \
	src/json_items.o \
	src/known_cis.o \
	src/merge.o \
	src/permission.o \
	src/policy_gate.o \
	src/provider.o \
	src/run_slots.o \
	src/run_worker.o \
	src/scheduler.o \
	src/secrets.o \
	src/sigv4.o \
	src/standby.o \
	src/token_key.o \
	src/wipe.o \
	src/xml_guard.o \
	src/xml_items.o

DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built), $(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN = $(EXTENSION).control

REGRESS = setup connector validation rbac secrets template template_least_privilege registry privilege
REGRESS_OPTS = --inputdir=test --load-extension=pgcrypto

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config

PG_CPPFLAGS = $(shell pkg-config --cflags libcurl libssl libcrypto libxml-2.0) \
	-DCLOUDCONN_VERSION='"$(EXTVERSION)"'
# PostgreSQL's fmgr and GUC-hook signatures leave parameters unused by design.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter
SHLIB_LINK = $(shell pkg-config --libs libcurl libssl libcrypto libxml-2.0)

# `make FUZZ=1`: the fuzzing build (README: Fuzzing), never installed: the
# readers of untrusted input with their fuzz targets (src/*_fuzz.c, included
# by the files they test) and cloudconn_fuzz() (src/fuzz.c), compiled with
# AddressSanitizer.  test/fuzz/run.sh makes it in a copy of the tree.
ifdef FUZZ
OBJS += src/fuzz.o
PG_CPPFLAGS += -DCLOUDCONN_FUZZ
PG_CFLAGS += -fsanitize=address -fno-omit-frame-pointer -g
SHLIB_LINK += -fsanitize=address
endif

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql
	cp $< $@

$(EXTENSION).control: $(EXTENSION).control.in Makefile
	sed 's/@EXTVERSION@/$(EXTVERSION)/' $< > $@
