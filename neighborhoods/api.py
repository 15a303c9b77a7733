"""JSON API for neighborhoods, memberships, accounts and tokens."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.db.models import Count
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from . import services
from .apibase import ApiError, ApiView, AuthenticatedApiView, required_param
from .conf import app_settings
from .geometry import GeometryError
from .locate import locate
from .models import Membership, Neighborhood, Organization
from .permissions import residency_level
from .ratelimit import check_rate, client_ip


class NeighborhoodSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    member_count = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return obj.get_absolute_url()


class OrganizationSummarySerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    verified = serializers.BooleanField()
    website = serializers.URLField()


class NeighborhoodDetailSerializer(NeighborhoodSerializer):
    description = serializers.CharField()
    boundary = serializers.JSONField(help_text="GeoJSON (Multi)Polygon, longitude/latitude")
    bbox = serializers.SerializerMethodField()
    organizations = OrganizationSummarySerializer(many=True)
    attribution = serializers.SerializerMethodField()

    def get_bbox(self, obj) -> list[float]:
        return [obj.min_lon, obj.min_lat, obj.max_lon, obj.max_lat]

    def get_attribution(self, obj) -> str:
        return app_settings.BOUNDARY_ATTRIBUTION


class MembershipSerializer(serializers.Serializer):
    neighborhood = serializers.SlugField(source="neighborhood.slug")
    role = serializers.CharField()
    verified = serializers.BooleanField(source="is_verified")
    joined_at = serializers.DateTimeField()


def neighborhoods_with_counts():
    return Neighborhood.objects.annotate(member_count=Count("memberships")).defer(
        "boundary", "source_properties"
    )


class NeighborhoodListView(ApiView):
    @extend_schema(
        summary="List neighborhoods",
        parameters=[OpenApiParameter("q", str, description="filter by name (contains)")],
        responses=NeighborhoodSerializer(many=True),
    )
    def get(self, request):
        queryset = neighborhoods_with_counts().order_by("name")
        query = request.query_params.get("q", "").strip()
        if query:
            queryset = queryset.filter(name__icontains=query[:100])
        return Response(NeighborhoodSerializer(queryset, many=True).data)


class NeighborhoodDetailView(ApiView):
    @extend_schema(
        summary="One neighborhood, with its boundary", responses=NeighborhoodDetailSerializer
    )
    def get(self, request, slug: str):
        neighborhood = get_object_or_404(
            Neighborhood.objects.annotate(member_count=Count("memberships")).prefetch_related(
                "organizations"
            ),
            slug=slug,
        )
        return Response(NeighborhoodDetailSerializer(neighborhood).data)


class LocateView(ApiView):
    @extend_schema(
        summary="The neighborhood that contains a point",
        parameters=[
            OpenApiParameter("lat", float, required=True),
            OpenApiParameter("lon", float, required=True, description="`lng` and `long` also work"),
        ],
        responses={200: NeighborhoodSerializer, 400: None, 404: None},
    )
    def get(self, request):
        lat = required_param(request, "lat")
        lon = (
            request.query_params.get("lon")
            or request.query_params.get("lng")
            or request.query_params.get("long")
        )
        if not lon:
            required_param(request, "lon")
        try:
            found = locate(lat, lon)
        except GeometryError as exc:
            raise ApiError(str(exc), code="invalid_point") from exc
        if found is None:
            raise ApiError(
                "No neighborhood contains this point.", code="not_found", status_code=404
            )
        neighborhood = neighborhoods_with_counts().get(pk=found.pk)
        return Response(NeighborhoodSerializer(neighborhood).data)


class MembershipView(AuthenticatedApiView):
    @extend_schema(
        summary="Join a neighborhood",
        request=None,
        responses={200: MembershipSerializer, 201: MembershipSerializer},
    )
    def post(self, request, slug: str):
        neighborhood = get_object_or_404(Neighborhood, slug=slug)
        existed = Membership.objects.filter(user=request.user, neighborhood=neighborhood).exists()
        membership = services.join_neighborhood(user=request.user, neighborhood=neighborhood)
        return Response(
            MembershipSerializer(membership).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(summary="Leave a neighborhood", responses={204: None})
    def delete(self, request, slug: str):
        neighborhood = get_object_or_404(Neighborhood, slug=slug)
        services.leave_neighborhood(user=request.user, neighborhood=neighborhood)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    display_name = serializers.CharField()
    home_neighborhood = serializers.SlugField(allow_null=True)
    is_city_staff = serializers.BooleanField()
    department = serializers.CharField(allow_null=True)
    memberships = MembershipSerializer(many=True)
    organizations = serializers.ListField(child=serializers.DictField())


class MeView(AuthenticatedApiView):
    @extend_schema(summary="The signed-in person", responses=MeSerializer)
    def get(self, request):
        user = request.user
        profile = services.get_profile(user)
        memberships = (
            Membership.objects.filter(user=user)
            .select_related("neighborhood")
            .order_by("joined_at")
        )
        staff = getattr(user, "city_staff", None)
        organizations = [
            {"slug": m.organization.slug, "name": m.organization.name, "role": m.role}
            for m in user.organization_memberships.select_related("organization")
        ]
        data = {
            "id": user.pk,
            "email": user.email,
            "display_name": profile.public_name,
            "home_neighborhood": (
                profile.home_neighborhood.slug if profile.home_neighborhood_id else None
            ),
            "is_city_staff": staff is not None,
            "department": staff.department.name if staff else None,
            "memberships": MembershipSerializer(memberships, many=True).data,
            "organizations": organizations,
        }
        for item, membership in zip(data["memberships"], memberships, strict=True):
            item["level"] = residency_level(user, membership.neighborhood).name.lower()
        return Response(data)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False)
    name = serializers.CharField(required=False, allow_blank=True, max_length=80)


class TokenView(ApiView):
    authentication_classes: list = []

    @extend_schema(
        summary="Exchange e-mail and password for an API token",
        request=TokenRequestSerializer,
        responses={
            201: inline_serializer(
                "TokenResponse",
                {"token": serializers.CharField(), "user_id": serializers.IntegerField()},
            )
        },
        auth=[],
    )
    def post(self, request):
        check_rate(
            "api-token",
            client_ip(request),
            limit=app_settings.API_LOGIN_ATTEMPTS_PER_MINUTE,
            period=60,
        )
        payload = TokenRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        email = payload.validated_data["email"]
        user_model = get_user_model()
        account = user_model._default_manager.filter(email__iexact=email).first()
        user = None
        if account is not None:
            user = authenticate(
                request._request,
                username=getattr(account, user_model.USERNAME_FIELD),
                password=payload.validated_data["password"],
            )
        if user is None:
            raise ApiError(
                "E-mail or password is wrong.", code="invalid_credentials", status_code=401
            )
        token, key = services.issue_api_token(
            user=user, name=payload.validated_data.get("name", "")
        )
        return Response({"token": key, "user_id": user.pk}, status=status.HTTP_201_CREATED)


class OrganizationListView(ApiView):
    @extend_schema(summary="List organizations", responses=OrganizationSummarySerializer(many=True))
    def get(self, request):
        queryset = Organization.objects.order_by("name")
        slug = request.query_params.get("neighborhood")
        if slug:
            queryset = queryset.filter(neighborhoods__slug=slug)
        return Response(OrganizationSummarySerializer(queryset, many=True).data)
