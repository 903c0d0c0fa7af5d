# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
FLASK := $(BIN)/flask --app fieldapp

.PHONY: run test test-quick install install-test migrate seed clean drill drill-quick upgrade vendor-map

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# npm web-push: the reference sender tests/test_push_reference.py compares our pushes with.
$(VENV)/.installed-test: pyproject.toml tests/webpush/package-lock.json | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	npm ci --prefix tests/webpush --no-audit --no-fund --silent
	touch $@ $(VENV)/.installed

# The real OpenID provider the single sign-on tests run on loopback (tests/oidc, Node). Installed
# here, again only when its lock file changes, and never by the tests: two pytest-xdist workers
# each running `npm ci` (which empties node_modules first) broke each other's provider.
OIDC_MODULES := tests/oidc/node_modules/.installed
$(OIDC_MODULES): tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --silent
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(OIDC_MODULES)

migrate: install
	$(DEMO_ENV) $(FLASK) migrate --create
	test -f instance/backup.key || $(DEMO_ENV) $(FLASK) backup-key create

# The demo: passkeys need a name, not an IP address, so it is served as http://localhost:$(PORT);
# no role must have a second factor, so the printed passwords sign in (production: every role);
# and logs are plain text for a person at a terminal (production: JSON lines for the SIEM).
DEMO_ENV := FIELDAPP_LOG_FORMAT=text FIELDAPP_MFA_REQUIRED_ROLES='[]' FIELDAPP_WEBAUTHN_RP_ID=localhost FIELDAPP_WEBAUTHN_ORIGIN=http://localhost:$(PORT)

# After pulling a new release: its CHANGELOG warnings, an encrypted backup (into backups/), every
# migration in one transaction, and the readiness check (docs/DEPLOY.md, "Upgrading").
upgrade: install
	$(DEMO_ENV) $(FLASK) upgrade

seed: migrate
	$(DEMO_ENV) $(FLASK) seed-demo

run: seed
	@echo "Open http://localhost:$(PORT) (not 127.0.0.1: passkeys refuse an IP address)."
	$(DEMO_ENV) FIELDAPP_WORKER_IN_PROCESS=true $(FLASK) run --host 127.0.0.1 --port $(PORT)

# Two runs: the unit and view tests on both cores (pytest-xdist), then the Chromium tests one at a
# time (their offline and timing checks want the CPU to themselves). Exit 5 is "no test matched":
# PYTEST_ARGS may pick tests of one kind only. On a 2-core machine (2026-12-08) alone: about
# 1 min 45 s, then 2 min in Chromium; a fresh clone first spends about 2 minutes on .venv, pip and npm ci.
test: install-test
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 -m "not browser" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The inner loop: the import rules and everything but the Chromium tests, on both cores (about 2 minutes).
test-quick: install-test
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 -m "not browser" $(PYTEST_ARGS)

# A disaster-recovery rehearsal (docs/DEPLOY.md): not part of `make test`. drill-quick is the
# same rehearsal with fewer accounts and requests; .ci/run runs it after `make test`.
drill: install
	$(BIN)/python deploy/drill.py

drill-quick: install
	$(BIN)/python deploy/drill.py --quick

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
