"""Who may see and do what: the one scoping policy.

Every view, API endpoint, export, socket and service asks here; nothing else decides from a
user's role. docs/api.md has the matrix (role × resource → allowed) this module implements.

The module sits at the bottom layer with the organisation: it imports nothing above it. The
scoping functions therefore take the caller's queryset (``policy.incidents(user, Incident.objects
.all())``) and filter it by field names, so streams, alerts, incidents and frontend can all use it.

Scopes, in short:

- superuser, and an administrator with neither township nor district: every township of every
  district (city-wide), acts;
- administrator with a district: every township of the district, acts; with a township: that
  township, acts;
- duty officer: their township (and joint whistles blown with it), acts; a district duty
  officer (a district, no township): every township of the district, acts, and the district
  board;
- supervisor: their township, or every township of their district (or of every district, with
  neither); reads, and acts in one way only:
  issuing supervision orders (督办单) on the incidents of the townships they supervise (the
  township's duty officers and administrators may issue them too); the supervisor console of
  those townships (superusers: every township);
- department member: their department's summonses and supervision orders (acknowledged and
  answered by its members, or an administrator of the township), the incidents it was summoned
  to, the photos of those incidents and of their colleagues; no alerts, no boards, no grid
  reports;
- grid officer: their own grids (head or member): the grids' reports, alerts and incidents (with
  timeline and CAP); files reports in their township; settles on the spot, or hands up to the
  township, the open matters of their grids and their own reports (小事不出格);
- hotline system (a 12345/12315 system's account): files its tickets by Open311 into its
  township and follows its own; no board, alerts or incidents;
- a caller's phone number: whole only to those who command the township (they call back);
  everyone else, and every list, sees it masked;
- anyone inactive or anonymous: nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from command.org.models import Department, Grid, Township, User

Role = User.Role
Q_ = TypeVar("Q_", bound=QuerySet)

# Roles whose township scope is the whole township (board, alerts, incidents, reports).
_TOWNSHIP_ROLES = frozenset({Role.DUTY_OFFICER, Role.SUPERVISOR, Role.ADMINISTRATOR})
# Roles that act on a township's matters (alerts, incidents, whistles, releases).
_COMMAND_ROLES = frozenset({Role.DUTY_OFFICER, Role.ADMINISTRATOR})
# Roles that hold every district (the city) when they have neither township nor district.
_CITY_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})


def is_active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def is_city(user: Any) -> bool:
    """Sees (and, unless a supervisor, acts in) every township of every district."""
    if not is_active(user):
        return False
    return user.is_superuser or (
        user.role in _CITY_ROLES and user.township_id is None and user.district_id is None
    )


def is_district(user: Any) -> bool:
    """Holds at least a whole district: a district's duty officer, supervisor or
    administrator (a district, no township), or a city-wide role."""
    if is_city(user):
        return True
    return (
        is_active(user)
        and user.role in _TOWNSHIP_ROLES
        and user.township_id is None
        and user.district_id is not None
    )


def district_township_ids(district_id: int) -> set[int]:
    return set(Township.objects.filter(district_id=district_id).values_list("pk", flat=True))


def _district_scope(user: Any) -> set[int]:
    # Asked several times per request and per socket frame: kept on the user object, which
    # lives for one request (a socket re-reads its user when it re-checks).
    cached = getattr(user, "_whistle_district_townships", None)
    if cached is None or cached[0] != user.district_id:
        cached = (user.district_id, district_township_ids(user.district_id))
        user._whistle_district_townships = cached
    return set(cached[1])


# --- townships ------------------------------------------------------------------------------


def township_ids(user: Any) -> set[int] | None:
    """Townships whose board, alerts, incidents and reports ``user`` sees; None means all."""
    if not is_active(user):
        return set()
    if is_city(user):
        return None
    if user.role not in _TOWNSHIP_ROLES:
        return set()
    if user.township_id:
        return {user.township_id}
    if user.district_id:
        return _district_scope(user)
    return set()


def command_township_ids(user: Any) -> set[int] | None:
    """Townships where ``user`` acts (alerts, incidents, whistles); None means all."""
    if not is_active(user):
        return set()
    if user.is_superuser:
        return None
    if user.role not in _COMMAND_ROLES:
        return set()
    if user.township_id:
        return {user.township_id}
    if user.district_id:
        return _district_scope(user)
    return None if user.role == Role.ADMINISTRATOR else set()


def _covers(ids: set[int] | None, township_id: int | None) -> bool:
    return ids is None or township_id in ids


def townships(user: Any, queryset: QuerySet[Township] | None = None) -> QuerySet[Township]:
    queryset = Township.objects.all() if queryset is None else queryset
    ids = township_ids(user)
    return queryset if ids is None else queryset.filter(pk__in=ids)


def can_watch_board(user: Any, township: Township) -> bool:
    """The live board, its device panels and sockets."""
    return _covers(township_ids(user), township.pk)


def can_supervise(user: Any, township: Township) -> bool:
    """Performance tables and their CSV, the incident timeline page and replay: whoever
    watches the board (duty officers review their own township's incidents too)."""
    return can_watch_board(user, township)


def supervised_township_ids(user: Any) -> set[int] | None:
    """Townships whose supervisor console (overdue work, escalations in progress, open
    supervision orders, who was notified and whether they read it) ``user`` follows: a
    township supervisor's own; a district supervisor's district; every township (None) for a
    city-wide supervisor, the discipline office or a superuser; none for anyone else."""
    if not is_active(user):
        return set()
    if user.is_superuser:
        return None
    if user.role != Role.SUPERVISOR:
        return set()
    return township_ids(user)


def can_open_supervisor_console(user: Any) -> bool:
    """The supervisor console page and its socket."""
    ids = supervised_township_ids(user)
    return ids is None or bool(ids)


def supervised(user: Any, queryset: Q_, *, township: str = "township_id") -> Q_:
    """The rows of ``queryset`` the supervisor console shows ``user``: those whose township
    (the field path ``township``) is one they follow."""
    ids = supervised_township_ids(user)
    return queryset if ids is None else queryset.filter(**{f"{township}__in": ids})


def own_notifications(user: Any, queryset: Q_) -> Q_:
    """Notifications (督办 reaching people): each person sees, opens and marks read only their
    own, whatever their role."""
    if not is_active(user):
        return queryset.none()
    return queryset.filter(user_id=user.pk)


def can_command(user: Any, township: Township | int | None) -> bool:
    """Acknowledge, dismiss and merge alerts, open and close incidents, blow whistles, release."""
    pk = township.pk if isinstance(township, Township) else township
    return pk is not None and _covers(command_township_ids(user), pk)


# --- departments ----------------------------------------------------------------------------


def can_open_console(user: Any, department: Department | int) -> bool:
    """A department's console and socket, and acting on its summonses (acknowledge, check in,
    report done): its own members; superusers for support."""
    if not is_active(user):
        return False
    pk = department.pk if isinstance(department, Department) else department
    if user.is_superuser:
        return True
    return user.role == Role.DEPARTMENT_MEMBER and user.department_id == pk


can_act_for_department = can_open_console


def departments(user: Any, queryset: QuerySet[Department] | None = None) -> QuerySet[Department]:
    queryset = Department.objects.all() if queryset is None else queryset
    if not is_active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    if user.role == Role.DEPARTMENT_MEMBER:
        return queryset.filter(pk=user.department_id)
    return queryset.none()


# --- grids ------------------------------------------------------------------------------------


def own_grid_ids(user: Any) -> set[int]:
    """The grids a grid officer heads or belongs to."""
    if not is_active(user) or user.role != Role.GRID_OFFICER:
        return set()
    return set(Grid.objects.filter(Q(head=user) | Q(members=user)).values_list("pk", flat=True))


def grids(user: Any, queryset: QuerySet[Grid] | None = None) -> QuerySet[Grid]:
    queryset = Grid.objects.all() if queryset is None else queryset
    if not is_active(user):
        return queryset.none()
    if user.role == Role.GRID_OFFICER and not user.is_superuser:
        return queryset.filter(township_id=user.township_id)
    ids = township_ids(user)
    return queryset if ids is None else queryset.filter(township_id__in=ids)


def can_file_report(user: Any, grid: Grid | None = None) -> bool:
    """Grid officers file reports, in their own township only."""
    if not is_active(user) or user.role != Role.GRID_OFFICER or user.township_id is None:
        return False
    return grid is None or grid.township_id == user.township_id


def _reported_by(user: Any) -> Q:
    # report_file writes the reporter into the alert it raises; nobody else writes that key.
    return Q(source="report", detail__reporter=user.username)


def settle_alerts(user: Any, queryset: Q_) -> Q_:
    """The alerts a grid officer may settle in the grid or hand up (小事不出格): in their
    township, of the grids they head or belong to, and the ones they reported (wherever they
    reported them). Nobody else's, whatever their role: the township closes its matters by
    incident."""
    if not is_active(user) or user.role != Role.GRID_OFFICER or user.township_id is None:
        return queryset.none()
    return queryset.filter(
        Q(grid_id__in=own_grid_ids(user)) | _reported_by(user), township_id=user.township_id
    )


def can_settle_in_grid(user: Any, alert: Any) -> bool:
    """``alert`` is one ``user`` may settle on the spot or hand up (:func:`settle_alerts`)."""
    if not is_active(user) or user.role != Role.GRID_OFFICER or user.township_id is None:
        return False
    if alert.township_id != user.township_id:
        return False
    detail = alert.detail if isinstance(alert.detail, dict) else {}
    return alert.grid_id in own_grid_ids(user) or (
        alert.source == "report" and detail.get("reporter") == user.username
    )


def can_file_hotline(user: Any, township: Township | int | None = None) -> bool:
    """A hotline system's account files its tickets (Open311 POST) into its own township."""
    if not is_active(user) or user.role != Role.HOTLINE or user.township_id is None:
        return False
    pk = township.pk if isinstance(township, Township) else township
    return pk is None or pk == user.township_id


def can_see_caller(user: Any, township: Township | int | None) -> bool:
    """The whole phone number of whoever raised an intake item: the township's duty officers
    (and administrators), who call back. Everyone else sees it masked."""
    return can_command(user, township)


# --- alerts, incidents, summonses, reports ----------------------------------------------------


def alerts(user: Any, queryset: Q_) -> Q_:
    """Alerts: the township's for its officers; a grid officer's grids'; none for departments."""
    if not is_active(user):
        return queryset.none()
    if user.role == Role.GRID_OFFICER and not user.is_superuser:
        return queryset.filter(grid_id__in=own_grid_ids(user))
    ids = township_ids(user)
    return queryset if ids is None else queryset.filter(township_id__in=ids)


def incidents(user: Any, queryset: Q_) -> Q_:
    """Incidents (with their timeline, CAP and summonses): the township's for its officers and
    the joint whistles blown with it; the ones a department was summoned to; a grid officer's
    grids'."""
    if not is_active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    if user.role == Role.DEPARTMENT_MEMBER:
        if not user.department_id:
            return queryset.none()
        summoned = queryset.model.objects.filter(
            whistles__summonses__department_id=user.department_id
        ).values("pk")
        return queryset.filter(pk__in=summoned)
    if user.role == Role.GRID_OFFICER:
        return queryset.filter(grid_id__in=own_grid_ids(user))
    ids = township_ids(user)
    if ids is None:
        return queryset
    joint = queryset.model.objects.filter(whistles__joint_township_id__in=ids).values("pk")
    return queryset.filter(Q(township_id__in=ids) | Q(pk__in=joint))


def can_see_incident(user: Any, incident: Any) -> bool:
    return incidents(user, type(incident).objects.filter(pk=incident.pk)).exists()


def summonses(user: Any, queryset: Q_) -> Q_:
    """Summons: a department's own; those of the incidents an officer or grid officer sees."""
    if not is_active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    if user.role == Role.DEPARTMENT_MEMBER:
        return queryset.filter(department_id=user.department_id or 0)
    if user.role == Role.GRID_OFFICER:
        return queryset.filter(whistle__incident__grid_id__in=own_grid_ids(user))
    ids = township_ids(user)
    if ids is None:
        return queryset
    return queryset.filter(
        Q(whistle__incident__township_id__in=ids) | Q(whistle__joint_township_id__in=ids)
    )


def reports(user: Any, queryset: Q_) -> Q_:
    """Intake items (also Open311 requests): a grid officer's own and their grids'; a hotline
    system's own; an officer's townships'; none for departments."""
    if not is_active(user):
        return queryset.none()
    if user.role == Role.HOTLINE and not user.is_superuser:
        return queryset.filter(reporter_id=user.pk)
    if user.role == Role.GRID_OFFICER and not user.is_superuser:
        return queryset.filter(Q(reporter_id=user.pk) | Q(grid_id__in=own_grid_ids(user)))
    ids = township_ids(user)
    return queryset if ids is None else queryset.filter(township_id__in=ids)


def photos(user: Any, queryset: Q_, *, incidents: QuerySet, reports: QuerySet) -> Q_:
    """Photos: one's own uploads, one's department's, those of the townships one watches, and
    those shown by an incident (evidence) or a report that one may see. ``incidents`` and
    ``reports`` are the caller's querysets already scoped for ``user`` (this module cannot
    import their models)."""
    if not is_active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    allowed = Q(uploaded_by_id=user.pk)
    if user.role == Role.DEPARTMENT_MEMBER and user.department_id:
        allowed |= Q(uploaded_by__department_id=user.department_id)
    ids = township_ids(user)
    if ids is None:
        return queryset
    if ids:
        allowed |= Q(township_id__in=ids)
    photo = f'"{queryset.model._meta.db_table}"."id"'
    for scoped, column, elements in (
        (incidents, "evidence", "jsonb_array_elements({}) AS e(v) WHERE e.v->>'url'"),
        (reports, "photos", "jsonb_array_elements_text({}) AS e(v) WHERE e.v"),
    ):
        table = scoped.model._meta.db_table
        try:
            sub_sql, sub_params = scoped.values("pk").query.sql_with_params()
        except EmptyResultSet:  # nothing of this kind is in scope
            continue
        where = elements.format(f's."{column}"')
        allowed |= Q(
            RawSQL(
                f"EXISTS (SELECT 1 FROM \"{table}\" s, {where} = '/photos/' || {photo}::text "
                f'AND s."id" IN ({sub_sql}))',
                sub_params,
                output_field=BooleanField(),
            )
        )
    return queryset.filter(allowed)


# --- joint whistles ---------------------------------------------------------------------------


def can_confirm_joint(user: Any, joint_township: Township | int | None) -> bool:
    """The other township of a joint whistle (联合哨) confirms it: its duty officers (or
    administrators, or a district role)."""
    return can_command(user, joint_township)


# --- supervision orders (督办单) ----------------------------------------------------------------


def can_issue_order(user: Any, township: Township | int | None) -> bool:
    """A supervision order on an incident of ``township``: its supervisors (a district
    supervisor's in every township) — the one thing a supervisor does rather than reads — and
    whoever commands the township (duty officers, administrators)."""
    pk = township.pk if isinstance(township, Township) else township
    if pk is None or not is_active(user):
        return False
    if can_command(user, pk):
        return True
    return user.role == Role.SUPERVISOR and _covers(township_ids(user), pk)


def can_answer_order(user: Any, department: Department | int, township: Township | int) -> bool:
    """Acknowledge and answer an order addressed to ``department`` on an incident of
    ``township``: the department's members (superusers for support), and the township's
    administrators (or the district's) answering for a department that cannot."""
    if can_act_for_department(user, department):
        return True
    pk = township.pk if isinstance(township, Township) else township
    return user.role == Role.ADMINISTRATOR and can_command(user, pk)


def _by_department(user: Any, queryset: Q_) -> Q_ | None:
    """Rows addressed to departments (orders, ratings) as far as the role alone decides:
    nothing for the inactive and the roles without a township, everything for superusers, a
    member's own department's; None for a township role, which the caller scopes by township."""
    if not is_active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    if user.role == Role.DEPARTMENT_MEMBER:
        return queryset.filter(department_id=user.department_id or 0)
    if user.role not in _TOWNSHIP_ROLES:
        return queryset.none()
    return None


def orders(user: Any, queryset: Q_) -> Q_:
    """Supervision orders: a department's own; those of the townships an officer or
    supervisor watches (and of the joint whistles blown with them); none for grid officers
    and hotline systems, which follow incidents, not departments."""
    scoped = _by_department(user, queryset)
    if scoped is not None:
        return scoped
    ids = township_ids(user)
    if ids is None:
        return queryset
    joint = queryset.model.objects.filter(incident__whistles__joint_township_id__in=ids).values(
        "pk"
    )
    return queryset.filter(Q(township_id__in=ids) | Q(pk__in=joint))


# --- assessment (考核) --------------------------------------------------------------------------


def can_rate(user: Any, township: Township | int | None) -> bool:
    """Rate the departments that served ``township`` (以下评上), define its criteria and answer
    the departments' objections: the township's supervisors and administrators (a district
    administrator's in every township); superusers."""
    pk = township.pk if isinstance(township, Township) else township
    if pk is None or not is_active(user):
        return False
    if user.is_superuser:
        return True
    if user.role not in (Role.SUPERVISOR, Role.ADMINISTRATOR):
        return False
    if user.township_id is not None:
        return user.township_id == pk
    # A district supervisor reads every township of it but rates none: the township rates.
    return user.role == Role.ADMINISTRATOR and _covers(command_township_ids(user), pk)


def can_see_ratings(user: Any, township: Township | int, department: Department | int) -> bool:
    """A rating, its computation and its objections: whoever supervises the township, and the
    rated department's members."""
    pk = township.pk if isinstance(township, Township) else township
    return _covers(township_ids(user), pk) or can_open_console(user, department)


def can_object(user: Any, department: Department | int) -> bool:
    """Object in writing to the department's rating: its members (superusers for support)."""
    return can_open_console(user, department)


def can_view_district(user: Any) -> bool:
    """The district's assessment view (every department across its townships, rankings, the
    631 drift): district (or city-wide) supervisors and administrators, the discipline
    office, superusers. It shows the townships of :func:`township_ids`."""
    return is_district(user) and (
        user.is_superuser or user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR)
    )


def district_ids(user: Any) -> set[int] | None:
    """Districts whose district board ``user`` watches: their own district for a district's
    duty officer, supervisor or administrator; every district (None) for a city-wide role."""
    if is_city(user):
        return None
    if is_district(user):
        return {user.district_id}
    return set()


def can_watch_district(user: Any, district: Any) -> bool:
    """The district board (every township of a district on one screen) and its socket."""
    pk = district if isinstance(district, int) else getattr(district, "pk", None)
    return pk is not None and _covers(district_ids(user), pk)


def ratings(user: Any, queryset: Q_) -> Q_:
    """Department ratings: those of the townships ``user`` watches (supervisors, duty
    officers, administrators; district roles every township) and a department's own."""
    scoped = _by_department(user, queryset)
    if scoped is not None:
        return scoped
    ids = township_ids(user)
    return queryset if ids is None else queryset.filter(township_id__in=ids)
