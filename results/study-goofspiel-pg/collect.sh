#!/usr/bin/env bash
# Copy the study's finished runs here and write report.md (scripts/collect_study.sh).
exec "$(dirname "$0")/../../scripts/collect_study.sh" study-goofspiel-pg
