# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
FLASK := $(BIN)/flask --app fieldapp

.PHONY: run test test-quick install install-test migrate seed clean drill vendor-map

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

migrate: install
	$(DEMO_ENV) $(FLASK) migrate --create

# The demo: passkeys need a name, not an IP address, so it is served as http://localhost:$(PORT);
# no role must have a second factor, so the printed passwords sign in (production: every role);
# and logs are plain text for a person at a terminal (production: JSON lines for the SIEM).
DEMO_ENV := FIELDAPP_LOG_FORMAT=text FIELDAPP_MFA_REQUIRED_ROLES='[]' FIELDAPP_WEBAUTHN_RP_ID=localhost FIELDAPP_WEBAUTHN_ORIGIN=http://localhost:$(PORT)

seed: migrate
	$(DEMO_ENV) $(FLASK) seed-demo

run: seed
	@echo "Open http://localhost:$(PORT) (not 127.0.0.1: passkeys refuse an IP address)."
	$(DEMO_ENV) FIELDAPP_WORKER_IN_PROCESS=true $(FLASK) run --host 127.0.0.1 --port $(PORT)

# Two runs: the unit and view tests on both cores (pytest-xdist), then the Chromium tests one at a
# time (their offline and timing checks want the CPU to themselves). Exit 5 is "no test matched":
# PYTEST_ARGS may pick tests of one kind only.
test: install-test
	$(BIN)/python -m pytest -n 2 -m "not browser" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The inner loop: everything but the Chromium tests, on both cores (about a minute).
test-quick: install-test
	$(BIN)/python -m pytest -n 2 -m "not browser" $(PYTEST_ARGS)

# A disaster-recovery rehearsal (docs/DEPLOY.md): not part of `make test`.
drill: install
	$(BIN)/python deploy/drill.py

clean:
	rm -rf $(VENV) .pytest_cache

# The map's renderer (docs/MAPS.md): Leaflet and protomaps-leaflet, copied from their npm packages with the
# licences of everything protomaps-leaflet's bundle holds. Needs npm; run again to change a version.
LEAFLET_VERSION := 1.9.4
PROTOMAPS_LEAFLET_VERSION := 5.1.0
PROTOMAPS_BUNDLED := protomaps-leaflet pmtiles fflate @mapbox/point-geometry @mapbox/vector-tile pbf rbush quickselect \
	potpack color2k @protomaps/basemaps
vendor-map:
	rm -rf .vendor-map && mkdir .vendor-map
	cd .vendor-map && npm install --silent --no-audit --no-fund --no-save \
		leaflet@$(LEAFLET_VERSION) protomaps-leaflet@$(PROTOMAPS_LEAFLET_VERSION)
	cp .vendor-map/node_modules/leaflet/dist/leaflet.js fieldapp/static/vendor/leaflet-$(LEAFLET_VERSION).min.js
	cp .vendor-map/node_modules/leaflet/dist/leaflet.css fieldapp/static/vendor/leaflet-$(LEAFLET_VERSION).css
	cp .vendor-map/node_modules/leaflet/LICENSE fieldapp/static/vendor/leaflet-LICENSE.txt
	cp .vendor-map/node_modules/protomaps-leaflet/dist/protomaps-leaflet.js \
		fieldapp/static/vendor/protomaps-leaflet-$(PROTOMAPS_LEAFLET_VERSION).min.js
	cd .vendor-map/node_modules && for p in $(PROTOMAPS_BUNDLED); do \
		printf '== %s %s (%s) ==\n\n' "$$p" "$$(node -p "require('./$$p/package.json').version")" \
			"$$(node -p "require('./$$p/package.json').license")"; \
		cat $$p/LICEN[CS]E* 2>/dev/null || echo "(no licence file in the package; its package.json says the licence above)"; \
		echo; done > ../../fieldapp/static/vendor/protomaps-leaflet-LICENSE.txt
	rm -rf .vendor-map
