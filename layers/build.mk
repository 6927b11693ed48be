# Shared by the Makefiles that `sam build` runs (BuildMethod: makefile): the layer's and the example subscriber's.
# The includer sets REPO (found from its own path, never from the working directory: sam runs make in a scratch copy).
# The interpreter is `python3.13` on PATH, the one `sam build` without a container needs anyway.
PYTHON ?= python3.13

# pip for Lambda's arm64 python3.13 whatever this machine is: wheels only (a native one is taken for aarch64),
# no bytecode (Lambda compiles what it imports), into --target DIR -r FILE (the includer adds them).
PIP_INSTALL_ARM64 = $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile \
	--platform manylinux2014_aarch64 --implementation cp --python-version 3.13 --only-binary=:all:

# Copy the modules of stack_webhook_fanout that an entry point imports: add --entry FILE --target DIR.
COPY_IMPORTED_MODULES = $(PYTHON) "$(REPO)/layers/import_closure.py" --src "$(REPO)/src" --package stack_webhook_fanout

define require_artifacts_dir
	@[ -n "$(ARTIFACTS_DIR)" ] || { echo "ARTIFACTS_DIR is not set: this Makefile is run by sam build" >&2; exit 2; }
endef
