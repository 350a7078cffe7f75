"""The query strings of the knowledge-base API as typed models: parsed by
``console.jsonapi.parse_query`` (400 with the field and the reason otherwise) and documented in
OpenAPI from the same class, so the two cannot disagree."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from knowledge_base.unanswered import DEFAULT_CLUSTER_THRESHOLD

PER_PAGE_MAX = 200
CONFLICT_MARGIN = 0.1  # "clearly closer": measured on the sample KB, hides near-ties
SORT_FIELDS = ("id", "question", "category", "language", "status", "review_by", "updated_at")
REVIEW_FILTERS = ("", "overdue", "soon", "none")
_SORT_PATTERN = "^-?(" + "|".join(SORT_FIELDS) + ")$"


def _clipped(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: value.strip()[:limit])


class _Query(BaseModel):
    # Unknown parameters (cache busters, a page's own state) are ignored, as before.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ListQuery(_Query):
    q: Annotated[str, _clipped(200)] = Field(
        "", description="text searched in id, question, answer and variants"
    )
    category: str | None = Field(None, description="exact category")
    language: str | None = Field(None, description="language code")
    status: Literal["draft", "published", "archived"] | None = Field(None, description="status")
    kind: Literal["answer", "out_of_scope"] | None = Field(
        None, description="answer, or out_of_scope (examples of questions not answered)"
    )
    review: Literal["", "overdue", "soon", "none"] = Field(
        "", description="overdue, soon (within 30 days) or none (no review date)"
    )
    sort: str = Field(
        "id",
        pattern=_SORT_PATTERN,
        description=f"one of {', '.join(SORT_FIELDS)}; prefix - for descending",
    )
    page: int = Field(1, ge=1, le=100_000, description="1-based page number")
    per_page: int = Field(50, ge=1, le=PER_PAGE_MAX, description="items per page")


class DeleteQuery(_Query):
    expected_version: int = Field(ge=1, le=10**9, description="the version you are deleting")


class UnansweredQuery(_Query):
    language: str | None = Field(None, description="only questions in this language")
    threshold: float = Field(
        DEFAULT_CLUSTER_THRESHOLD, ge=0.05, le=0.99, description="cluster similarity"
    )
    limit: int = Field(100, ge=1, le=1000, description="clusters")
    out_of_scope: bool = Field(
        False,
        description="the questions out-of-scope entries took (handed off by design) instead of"
        " the ones that need an answer",
    )


class ConflictsQuery(_Query):
    margin: float = Field(
        CONFLICT_MARGIN, ge=0.0, le=1.0, description="how much closer the other FAQ must be"
    )
    faq_id: str | None = Field(None, description="only conflicts of this FAQ")


class HealthQuery(_Query):
    limit: int = Field(100, ge=1, le=5000, description="items per list")


class ImportQuery(_Query):
    format: Literal["auto", "csv", "jsonl"] = Field(
        "auto", description="auto (from filename/content), csv or jsonl"
    )
    filename: Annotated[str, _clipped(200)] = Field(
        "", description="original file name, used to detect the format"
    )
    mode: Literal["upsert", "create"] = Field(
        "upsert", description="upsert or create (refuse existing ids)"
    )
    publish: bool = Field(False, description="true: publish every imported row")


class ImportCommitQuery(ImportQuery):
    sha256: str | None = Field(None, description="the previewed file's sha256 (409 if it differs)")


class ExportQuery(_Query):
    format: Literal["csv", "jsonl"] = Field("csv", description="file format")
    status: Literal["all", "draft", "published", "archived"] = Field(
        "all", description="which FAQs"
    )
