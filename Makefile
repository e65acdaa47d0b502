# The two commands: `make run` (set up and start the app), `make test` (set up and test).
VENV := .venv
STAMP := $(VENV)/.setup-done

.PHONY: run test setup lint bench screenshot clean

run: $(VENV)/.setup-gui-done
	$(VENV)/bin/studio

$(VENV)/.setup-gui-done: $(STAMP)
	installer/setup.sh --gui --system-only
	touch $@

test: $(STAMP)
	$(VENV)/bin/ruff check studio tests bench
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/pytest -q

setup: $(STAMP)

$(STAMP): pyproject.toml installer/setup.sh
	installer/setup.sh
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check studio tests bench
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/python bench/face_engine.py --quick

screenshot: $(STAMP)
	$(VENV)/bin/studio screenshot shot.png

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
