from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    INVOLVED: _ClassVar[Outcome]
    INVOLVED_DOMAIN_ONLY: _ClassVar[Outcome]
    NOT_INVOLVED: _ClassVar[Outcome]
    DECLINED: _ClassVar[Outcome]
    DEFERRED: _ClassVar[Outcome]
    UNREACHABLE: _ClassVar[Outcome]
    ERROR: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
INVOLVED: Outcome
INVOLVED_DOMAIN_ONLY: Outcome
NOT_INVOLVED: Outcome
DECLINED: Outcome
DEFERRED: Outcome
UNREACHABLE: Outcome
ERROR: Outcome

class EvaluateRequest(_message.Message):
    __slots__ = ("key_id", "blinded_elements")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    BLINDED_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    blinded_elements: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, key_id: _Optional[str] = ..., blinded_elements: _Optional[_Iterable[bytes]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("key_id", "evaluated_elements", "proof", "quota_remaining")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    QUOTA_REMAINING_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    evaluated_elements: _containers.RepeatedScalarFieldContainer[bytes]
    proof: bytes
    quota_remaining: int
    def __init__(self, key_id: _Optional[str] = ..., evaluated_elements: _Optional[_Iterable[bytes]] = ..., proof: _Optional[bytes] = ..., quota_remaining: _Optional[int] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("key_id", "public_key", "suite")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    suite: str
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., suite: _Optional[str] = ...) -> None: ...

class Pseudonym(_message.Message):
    __slots__ = ("value", "key_id")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    key_id: str
    def __init__(self, value: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class QueryContext(_message.Message):
    __slots__ = ("purpose", "user", "acted_for", "role")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ACTED_FOR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    user: str
    acted_for: str
    role: str
    def __init__(self, purpose: _Optional[str] = ..., user: _Optional[str] = ..., acted_for: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class Disclosure(_message.Message):
    __slots__ = ("outcome", "organisation_id", "organisation_name", "domain", "contact", "since", "message")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    organisation_id: str
    organisation_name: str
    domain: str
    contact: str
    since: str
    message: str
    def __init__(self, outcome: _Optional[_Union[Outcome, str]] = ..., organisation_id: _Optional[str] = ..., organisation_name: _Optional[str] = ..., domain: _Optional[str] = ..., contact: _Optional[str] = ..., since: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("requester_organisation", "context", "items", "answer_id")
    REQUESTER_ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    requester_organisation: str
    context: QueryContext
    items: _containers.RepeatedCompositeFieldContainer[LookupItem]
    answer_id: str
    def __init__(self, requester_organisation: _Optional[str] = ..., context: _Optional[_Union[QueryContext, _Mapping]] = ..., items: _Optional[_Iterable[_Union[LookupItem, _Mapping]]] = ..., answer_id: _Optional[str] = ...) -> None: ...

class LookupItem(_message.Message):
    __slots__ = ("pseudonym", "case_reference")
    PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    CASE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    pseudonym: Pseudonym
    case_reference: str
    def __init__(self, pseudonym: _Optional[_Union[Pseudonym, _Mapping]] = ..., case_reference: _Optional[str] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Disclosure]
    def __init__(self, results: _Optional[_Iterable[_Union[Disclosure, _Mapping]]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "checkpoint", "inclusion_proof", "record")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    checkpoint: str
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    record: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., checkpoint: _Optional[str] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ..., record: _Optional[bytes] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    def __init__(self, checkpoint: _Optional[str] = ...) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class InclusionRequest(_message.Message):
    __slots__ = ("leaf_index", "tree_size")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class ProofResponse(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("context", "items")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    context: QueryContext
    items: _containers.RepeatedCompositeFieldContainer[QueryItem]
    def __init__(self, context: _Optional[_Union[QueryContext, _Mapping]] = ..., items: _Optional[_Iterable[_Union[QueryItem, _Mapping]]] = ...) -> None: ...

class QueryItem(_message.Message):
    __slots__ = ("pseudonym", "case_reference")
    PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    CASE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    pseudonym: Pseudonym
    case_reference: str
    def __init__(self, pseudonym: _Optional[_Union[Pseudonym, _Mapping]] = ..., case_reference: _Optional[str] = ...) -> None: ...

class OrganisationAnswer(_message.Message):
    __slots__ = ("organisation_id", "disclosure")
    ORGANISATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    organisation_id: str
    disclosure: Disclosure
    def __init__(self, organisation_id: _Optional[str] = ..., disclosure: _Optional[_Union[Disclosure, _Mapping]] = ...) -> None: ...

class ItemAnswer(_message.Message):
    __slots__ = ("fingerprint", "case_reference", "answers", "complete")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CASE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    case_reference: str
    answers: _containers.RepeatedCompositeFieldContainer[OrganisationAnswer]
    complete: bool
    def __init__(self, fingerprint: _Optional[str] = ..., case_reference: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[OrganisationAnswer, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("answer_id", "purpose", "legal_basis", "requester_organisation", "items", "complete", "answered_at", "receipt")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LEGAL_BASIS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    purpose: str
    legal_basis: str
    requester_organisation: str
    items: _containers.RepeatedCompositeFieldContainer[ItemAnswer]
    complete: bool
    answered_at: str
    receipt: Receipt
    def __init__(self, answer_id: _Optional[str] = ..., purpose: _Optional[str] = ..., legal_basis: _Optional[str] = ..., requester_organisation: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ItemAnswer, _Mapping]]] = ..., complete: _Optional[bool] = ..., answered_at: _Optional[str] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ...) -> None: ...
